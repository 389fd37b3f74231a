"""Steps from the hips' bounce, for front and rear views.

Seen from the front or behind, the swinging foot is hidden behind the planted leg and pose
models guess where it is, so foot contacts cannot be timed well.  The hips, always in view, drop
to their lowest point once per step, in mid-stance: a step runs from one low point to the next.
Everything measured from the front (cadence, shoulder roll and sway over a stride, shoulder
elevation, vertical oscillation over a step) is a peak-to-peak, median or rate over whole
periods, which does not depend on where in the cycle the period starts.
"""

from __future__ import annotations

from collections import deque
from typing import Optional

import numpy as np

WINDOW = 5  # frames: a low point is the lowest of the two frames either side
MIN_DROP = 0.025  # leg lengths the hips must have fallen since their high point
MIN_RISE = 0.0125  # ... and risen again within WINDOW // 2 frames after the low point


class BounceClock:
    """Streams the height of hip_mid, returns each low point once it is sure of it."""

    def __init__(self, min_step_s: float) -> None:
        self.min_step_s = min_step_s
        self._recent: deque[tuple[float, float]] = deque(maxlen=WINDOW)
        self._last_low: Optional[float] = None
        self._highest_since: Optional[float] = None

    def reset(self) -> None:
        self._recent.clear()
        self._last_low = None
        self._highest_since = None

    def update(self, t: float, height: Optional[float], leg_px: Optional[float]) -> Optional[float]:
        """`height`: hip_mid up coordinate (pixels), None when the hips are not seen.
        Returns the (interpolated) time of a low point WINDOW // 2 frames ago, else None."""
        if height is None or leg_px is None:
            self._recent.clear()
            return None
        self._recent.append((t, height))
        if self._highest_since is None or height > self._highest_since:
            self._highest_since = height
        if len(self._recent) < WINDOW:
            return None
        times = np.array([s[0] for s in self._recent])
        heights = np.array([s[1] for s in self._recent])
        mid = WINDOW // 2
        if heights[mid] > heights.min() or heights[mid] >= heights[mid - 1]:
            return None
        if self._highest_since - heights[mid] < MIN_DROP * leg_px:
            return None
        if heights[-1] - heights[mid] < MIN_RISE * leg_px:
            return None
        low_t = _vertex(times[mid - 1 : mid + 2], heights[mid - 1 : mid + 2])
        if self._last_low is not None and low_t - self._last_low < self.min_step_s:
            return None
        self._last_low = low_t
        self._highest_since = float(heights[mid:].max())
        return low_t


def _vertex(t: np.ndarray, h: np.ndarray) -> float:
    """Time of the lowest point of the parabola through three samples (the middle one's time
    when they are not evenly spaced or not curved)."""
    denominator = h[0] - 2.0 * h[1] + h[2]
    step = t[2] - t[1]
    if denominator <= 0 or abs((t[1] - t[0]) - step) > 1e-6:
        return float(t[1])
    offset = 0.5 * (h[0] - h[2]) / denominator
    return float(t[1] + np.clip(offset, -0.5, 0.5) * step)
