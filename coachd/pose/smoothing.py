"""One Euro filter for landmark jitter (Casiez et al. 2012), one state per coordinate.

The speed that opens the cut-off is measured in the person's sizes per second, so `beta`
means the same whatever the camera distance: a fast limb opens the cut-off (little lag), a
still one is smoothed hard (little jitter). As in MediaPipe, the speed is taken from the
previous raw value.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Optional

import numpy as np

from coachd.messages import Pose

# Cut-off for the speed estimate itself, Hz: high enough that a real movement is seen within
# a frame or two, low enough that jitter does not look like movement.
DERIVATIVE_CUTOFF_HZ = 4.0


def _alpha(cutoff_hz: np.ndarray | float, dt: float) -> np.ndarray:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz, dtype=np.float64))
    return np.asarray(1.0 / (1.0 + tau / dt))


class OneEuroFilter:
    """Filters an array of values that arrive with timestamps (seconds)."""

    def __init__(
        self,
        min_cutoff_hz: float,
        beta: float,
        derivative_cutoff_hz: float = DERIVATIVE_CUTOFF_HZ,
    ) -> None:
        self.min_cutoff_hz = min_cutoff_hz
        self.beta = beta
        self.derivative_cutoff_hz = derivative_cutoff_hz
        self._t: Optional[float] = None
        self._raw: Optional[np.ndarray] = None
        self._value: Optional[np.ndarray] = None
        self._speed: Optional[np.ndarray] = None

    def reset(self) -> None:
        self._t = self._raw = self._value = self._speed = None

    def __call__(self, value: np.ndarray, t: float, speed_scale: float = 1.0) -> np.ndarray:
        """The filtered value; `speed_scale` converts value units to the units of `beta`."""
        value = np.asarray(value, dtype=np.float64)
        if (
            self._t is None
            or self._raw is None
            or self._value is None
            or self._speed is None
            or self._value.shape != value.shape
        ):
            self._t, self._raw, self._value = t, value.copy(), value.copy()
            self._speed = np.zeros_like(value)
            return value.copy()
        dt = t - self._t
        if dt <= 0.0:  # a repeated or out-of-order timestamp: nothing new to learn
            return value.copy()
        # Speed from the previous raw value, as MediaPipe's OneEuroFilter does.
        speed = (value - self._raw) * (speed_scale / dt)
        self._raw = value.copy()
        self._speed = self._speed + _alpha(self.derivative_cutoff_hz, dt) * (speed - self._speed)
        cutoff = self.min_cutoff_hz + self.beta * np.abs(self._speed)
        self._value = self._value + _alpha(cutoff, dt) * (value - self._value)
        self._t = t
        return self._value.copy()


def pose_scale(pose: Pose) -> float:
    """The person's size in normalised image units: mean of the landmark box's sides."""
    norm = pose.norm[:, :2]
    width, height = pose.image_size
    span = (norm.max(axis=0) - norm.min(axis=0)) * np.array([width, height]) / max(width, height)
    return float(max(span.mean(), 1e-3))


class PoseSmoother:
    """One Euro filtering of a Pose's image and world landmarks, in body-size units."""

    def __init__(self, min_cutoff_hz: float, beta: float) -> None:
        self._image = OneEuroFilter(min_cutoff_hz, beta)
        self._world = OneEuroFilter(min_cutoff_hz, beta)

    def reset(self) -> None:
        self._image.reset()
        self._world.reset()

    def __call__(self, pose: Pose, t: float) -> Pose:
        width, height = pose.image_size
        # Square units (pixels / long side) so x and y are filtered alike on portrait frames.
        unit = np.array([width, height, width], dtype=np.float64) / max(width, height)
        image = self._image(pose.norm * unit, t, 1.0 / pose_scale(pose)) / unit
        # World landmarks are in metres already: a body is about one metre across.
        world = self._world(pose.world, t)
        xy = image[:, :2] * np.array([width, height], dtype=np.float64)
        return replace(
            pose,
            norm=image.astype(np.float32),
            xy=xy.astype(np.float32),
            world=world.astype(np.float32),
            raw_xy=pose.xy if pose.raw_xy is None else pose.raw_xy,
        )
