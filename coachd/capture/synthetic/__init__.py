"""The synthetic runner: a parametric person on a treadmill, drawn through a pinhole camera.

`SyntheticSource.from_spec("synthetic:?view=side-right&cadence=165&seconds=60")`.  Its ground
truth is measured in the tests (tests/synthetic_truth.py), from the same parameters.
"""

from __future__ import annotations

from coachd.capture.synthetic.params import SyntheticParams, parse_spec
from coachd.capture.synthetic.source import SyntheticSource

__all__ = ["SyntheticParams", "SyntheticSource", "parse_spec"]
