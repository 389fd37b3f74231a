"""Short per-frame history of the runner's landmarks, and the view-aligned coordinates.

Everything the gait stage measures is read from this history: a ring of the last few seconds
of image landmarks with a per-landmark "seen" flag (visible and inside the image).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Optional

import numpy as np

from coachd.body import LEFT_LEG, RIGHT_LEG
from coachd.messages import Landmark, View

# Anthropometric thigh + shank length as a fraction of body height (Winter, 2009).
LEG_LENGTH_PER_HEIGHT = 0.491
# A pose model's leg-label swaps are glitches of a few frames: a "swap" held longer than this
# is the fixer itself following the wrong leg, and it falls back to the model's labels.
MAX_SWAPPED_FRAMES = 5
# A leg whose points land farther than this share of the leg length from where its motion
# predicts, whichever way round the labels go, is mislabelled in some other way.
LOST_LEG_SHARE = 0.15


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


class LegLabelFixer:
    """Keeps each leg's landmarks on the same physical leg from frame to frame.

    In side views the pose model now and then swaps the left and right leg labels, or puts both
    on one leg.  A swap is undone when the swapped labels continue the previous motion much
    better; when both legs collapse onto one, the leg that does not fit is marked unseen.
    """

    def __init__(self) -> None:
        self._prev: Optional[np.ndarray] = None  # (2, 4, 2) leg points, last frame
        self._vel: Optional[np.ndarray] = None
        self._swapped_run = 0  # consecutive frames whose labels this fixer swapped

    def reset(self) -> None:
        self._prev = None
        self._vel = None
        self._swapped_run = 0

    def fix(self, xy: np.ndarray, seen: np.ndarray, leg_px: Optional[float]) -> bool:
        """Correct xy and seen in place; True when the leg labels were swapped.

        Every leg point takes part whatever its visibility: the model still places a leg it
        doubts (the far leg behind the near one), and its swaps come exactly then.
        """
        legs = np.stack([xy[list(LEFT_LEG)], xy[list(RIGHT_LEG)]])
        if self._prev is None or self._vel is None or leg_px is None:
            self._remember(legs)
            return False
        predicted = self._prev + self._vel
        keep = _distance(legs[0], predicted[0]) + _distance(legs[1], predicted[1])
        swap = _distance(legs[0], predicted[1]) + _distance(legs[1], predicted[0])
        swapped = False
        if swap < 0.6 * keep:
            if self._swapped_run >= MAX_SWAPPED_FRAMES:
                # Back on the model's labels: the motion so far belongs to the other leg.
                self._swapped_run = 0
                self._prev = None
                self._vel = None
                self._remember(legs)
                return False
            legs = legs[::-1].copy()
            xy[list(LEFT_LEG)], xy[list(RIGHT_LEG)] = legs[0], legs[1]
            left_seen = seen[list(LEFT_LEG)].copy()
            seen[list(LEFT_LEG)] = seen[list(RIGHT_LEG)]
            seen[list(RIGHT_LEG)] = left_seen
            self._swapped_run += 1
            swapped = True
        else:
            self._swapped_run = 0
        for i, leg in enumerate((LEFT_LEG, RIGHT_LEG)):
            if _distance(legs[i], predicted[i]) > LOST_LEG_SHARE * leg_px:
                # Neither label order fits this leg: the model mixed the legs up in this frame
                # (knees one way, feet the other).  Its points are not trusted this frame.
                seen[list(leg)] = False
        apart_now = float(np.linalg.norm(legs[0, 1] - legs[1, 1]))
        apart_expected = float(np.linalg.norm(predicted[0, 1] - predicted[1, 1]))
        if apart_now < 0.08 * leg_px and apart_expected > 0.3 * leg_px:
            # Both labels sit on one leg: keep the leg that fits, coast the other unseen.
            fits = [_distance(legs[i], predicted[i]) for i in (0, 1)]
            lost = int(np.argmax(fits))
            seen[list(LEFT_LEG if lost == 0 else RIGHT_LEG)] = False
            legs[lost] = predicted[lost]
        self._remember(legs)
        return swapped

    def _remember(self, legs: np.ndarray) -> None:
        if self._prev is not None:
            self._vel = 0.5 * (legs - self._prev)
        self._prev = legs.copy()


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.linalg.norm(a - b, axis=-1)))
