"""Robust statistics shared by the stages: a median and a spread that a few glitches cannot move."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

MAD_TO_SD = 1.4826  # the median absolute deviation of normal noise, scaled to its sd


def median_and_spread(values: Iterable[float]) -> tuple[float, float]:
    """The median and a normal-equivalent spread from the median absolute deviation."""
    array = np.fromiter(values, dtype=float)
    centre = float(np.median(array))
    return centre, MAD_TO_SD * float(np.median(np.abs(array - centre)))
