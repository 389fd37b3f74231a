"""Short per-frame history of the runner's landmarks, and the view-aligned coordinates.

Everything the gait stage measures is read from this history: a ring of the last few seconds
of image landmarks with a per-landmark "seen" flag (visible and inside the image).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Optional

import numpy as np

from coachd.messages import Landmark, View

# Anthropometric thigh + shank length as a fraction of body height (Winter, 2009).
LEG_LENGTH_PER_HEIGHT = 0.491


@dataclass(frozen=True)
class BodySample:
    """One frame's landmarks in image pixels with the seen flags."""

    t: float
    xy: np.ndarray  # (33, 2) image pixels, y down
    seen: np.ndarray  # (33,) bool
    visibility: np.ndarray  # (33,)
    raw_xy: Optional[np.ndarray] = None  # before smoothing, when xy is smoothed

    @property
    def unsmoothed(self) -> np.ndarray:
        return self.xy if self.raw_xy is None else self.raw_xy


def forward_sign(view: Optional[View]) -> float:
    """+1 when the runner faces image-right (side-right view), -1 for image-left."""
    return -1.0 if view == "side-left" else 1.0


def to_view_coords(xy: np.ndarray, view: Optional[View]) -> np.ndarray:
    """Image pixels -> (forward or sideways, up) pixels: x along the runner's forward direction
    in side views (image x as is in front/rear views), y pointing up."""
    out = np.array(xy, dtype=np.float64, copy=True)
    if view in ("side-left", "side-right"):
        out[..., 0] *= forward_sign(view)
    out[..., 1] *= -1.0
    return out


class History:
    """The last `seconds` of BodySamples, oldest first."""

    def __init__(self, seconds: float, fps: float) -> None:
        self._samples: deque[BodySample] = deque(maxlen=max(8, round(seconds * fps)))

    def append(self, sample: BodySample) -> None:
        self._samples.append(sample)

    def clear(self) -> None:
        self._samples.clear()

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def latest(self) -> Optional[BodySample]:
        return self._samples[-1] if self._samples else None

    def between(self, t0: float, t1: float) -> list[BodySample]:
        """Samples with t0 <= t <= t1 (a tiny tolerance for float times)."""
        eps = 1e-6
        return [s for s in self._samples if t0 - eps <= s.t <= t1 + eps]

    def at(self, t: float) -> Optional[BodySample]:
        """The sample closest in time to t."""
        if not self._samples:
            return None
        return min(self._samples, key=lambda s: abs(s.t - t))

    def stack(self, samples: list[BodySample]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(times (n,), xy (n,33,2), seen (n,33)) for a list of samples."""
        if not samples:
            return np.zeros(0), np.zeros((0, 33, 2)), np.zeros((0, 33), dtype=bool)
        return (
            np.array([s.t for s in samples]),
            np.stack([s.xy for s in samples]),
            np.stack([s.seen for s in samples]),
        )


def leg_length_px(xy: np.ndarray, seen: np.ndarray) -> Optional[float]:
    """Longest seen hip-knee-ankle chain in one frame (foreshortening only shortens a leg)."""
    best: Optional[float] = None
    for hip, knee, ankle in (
        (Landmark.LEFT_HIP, Landmark.LEFT_KNEE, Landmark.LEFT_ANKLE),
        (Landmark.RIGHT_HIP, Landmark.RIGHT_KNEE, Landmark.RIGHT_ANKLE),
    ):
        if seen[hip] and seen[knee] and seen[ankle]:
            length = float(
                np.linalg.norm(xy[hip] - xy[knee]) + np.linalg.norm(xy[knee] - xy[ankle])
            )
            best = length if best is None else max(best, length)
    return best


class LegLengthEstimate:
    """Leg length L in pixels: a high percentile of recent per-frame chains (robust, no lag)."""

    def __init__(self, fps: float, seconds: float = 4.0) -> None:
        self._values: deque[float] = deque(maxlen=max(8, int(seconds * fps)))
        self.value: Optional[float] = None
        self._fresh = 0

    def update(self, xy: np.ndarray, seen: np.ndarray) -> Optional[float]:
        length = leg_length_px(xy, seen)
        if length is not None and length > 1.0:
            self._values.append(length)
            self._fresh += 1
        # A percentile of seconds of history moves slowly: refreshed every few new values.
        if len(self._values) >= 3 and (self.value is None or self._fresh >= 5):
            self.value = float(np.percentile(np.array(self._values), 80))
            self._fresh = 0
        return self.value

    def reset(self) -> None:
        self._values.clear()
        self.value = None
        self._fresh = 0
