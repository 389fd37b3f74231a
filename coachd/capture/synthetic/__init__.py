"""The synthetic runner: a parametric person on a treadmill, drawn, with ground truth.

`SyntheticSource.from_spec("synthetic:?view=side-right&cadence=165&seconds=60")`.
"""

from __future__ import annotations

from coachd.capture.synthetic.params import SyntheticParams, parse_spec
from coachd.capture.synthetic.source import SyntheticSource
from coachd.capture.synthetic.truth import SyntheticTruth, foot_strike, simulate_truth

__all__ = [
    "SyntheticParams",
    "SyntheticSource",
    "SyntheticTruth",
    "foot_strike",
    "parse_spec",
    "simulate_truth",
]
