"""Steps from the hips' bounce, for front and rear views.

Seen from the front or behind, the swinging foot is hidden behind the planted leg and pose
models guess where it is, so foot contacts cannot be timed well.  The hips, always in view, drop
to their lowest point once per step, in mid-stance: a step runs from one low point to the next.
Everything measured from the front (cadence, shoulder roll and sway over a stride, shoulder
elevation, vertical oscillation over a step) is a peak-to-peak, median or rate over whole
periods, which does not depend on where in the cycle the period starts.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

MIN_DROP = 0.025  # leg lengths the hips must have fallen from their high point to a low point
MIN_RISE = 0.0125  # ... and risen again after it, for the low point to count
MAX_WAIT_S = 0.15  # a low point the rise has not confirmed within this long is given up

Sample = tuple[float, float]  # (time, height)


class BounceClock:
    """Streams the height of hip_mid, returns each low point once it is sure of it.

    A low point is the lowest height since the last high point, confirmed once the hips have
    risen MIN_RISE above it: a hysteresis, not a fixed window, because the hips' low in
    mid-stance is broad (three frames within 2 px of each other at 30 fps) and a window
    demanding the rise within two frames lost a third of the steps to landmark noise.
    """

    def __init__(self, min_step_s: float) -> None:
        self.min_step_s = min_step_s
        self._last_low: Optional[float] = None
        self._previous: Optional[Sample] = None  # the last height, while the hips are seen
        self._high: Optional[float] = None  # highest since the last low point
        self._lowest: Optional[Sample] = None  # lowest since that high point
        # The heights either side of the lowest, for its time between frames.
        self._before_lowest: Optional[Sample] = None
        self._after_lowest: Optional[Sample] = None

    def reset(self) -> None:
        self._last_low = None
        self._lose_track()

    def _lose_track(self) -> None:
        self._previous = None
        self._high = None
        self._lowest = None

    def update(self, t: float, height: Optional[float], leg_px: Optional[float]) -> Optional[float]:
        """`height`: hip_mid up coordinate (pixels), None when the hips are not seen.
        Returns the (interpolated) time of a low point once the rise after it shows, else None."""
        if height is None or leg_px is None:
            self._lose_track()
            return None
        sample, before = (t, height), self._previous
        self._previous = sample
        if self._high is None or height > self._high:
            self._high = height  # still rising: a low point can only come after this
            self._lowest = None
            return None
        if self._lowest is None or height < self._lowest[1]:
            self._lowest, self._before_lowest, self._after_lowest = sample, before, None
            return None
        if self._after_lowest is None:
            self._after_lowest = sample
        low_t, low = self._lowest
        if t - low_t > MAX_WAIT_S:
            # A flat stretch, not a bounce: look afresh from here.
            self._lowest, self._before_lowest, self._after_lowest = sample, before, None
            return None
        if self._high - low < MIN_DROP * leg_px or height - low < MIN_RISE * leg_px:
            return None
        at = self._lowest_time()
        self._high, self._lowest = height, None
        if self._last_low is not None and at - self._last_low < self.min_step_s:
            return None
        self._last_low = at
        return at

    def _lowest_time(self) -> float:
        """The low point between frames: the vertex of the parabola through it and the heights
        just before and after (its own frame's time when there is no height before it)."""
        assert self._lowest is not None and self._after_lowest is not None
        if self._before_lowest is None:
            return self._lowest[0]
        samples = (self._before_lowest, self._lowest, self._after_lowest)
        return _vertex(np.array([st for st, _ in samples]), np.array([sh for _, sh in samples]))


def _vertex(t: np.ndarray, h: np.ndarray) -> float:
    """Time of the lowest point of the parabola through three samples (the middle one's time
    when they are not evenly spaced or not curved)."""
    denominator = h[0] - 2.0 * h[1] + h[2]
    step = t[2] - t[1]
    if denominator <= 0 or abs((t[1] - t[0]) - step) > 1e-6:
        return float(t[1])
    offset = 0.5 * (h[0] - h[2]) / denominator
    return float(t[1] + np.clip(offset, -0.5, 0.5) * step)
