"""Which side of the runner the camera sees, from the landmarks (or pinned by the settings)."""

from __future__ import annotations

from collections import Counter, deque
from typing import Optional

import numpy as np

from coachd.body import HIPS, SHOULDERS, facing_sign, torso_length
from coachd.messages import Landmark, View

# Shoulder+hip width over torso length: well below this the body is seen edge-on (side view).
SIDE_MAX_WIDTH = 0.2
FRONTAL_MIN_WIDTH = 0.3


def frame_view(xy: np.ndarray, seen: np.ndarray) -> Optional[View]:
    """This frame's best guess, None when the landmarks cannot tell."""
    if not all(seen[i] for i in (*SHOULDERS, *HIPS)):
        return None
    torso = float(torso_length(xy))
    if torso < 1.0:
        return None
    # Signed widths: positive when the runner's left is on image-right (seen from the front).
    shoulders = xy[Landmark.LEFT_SHOULDER, 0] - xy[Landmark.RIGHT_SHOULDER, 0]
    hips = xy[Landmark.LEFT_HIP, 0] - xy[Landmark.RIGHT_HIP, 0]
    width = (abs(shoulders) + abs(hips)) / (2 * torso)
    if width >= FRONTAL_MIN_WIDTH:
        return "front" if shoulders + hips > 0 else "rear"
    if width > SIDE_MAX_WIDTH:
        return None
    facing = facing_sign(xy, seen)
    if facing == 0:
        return None
    # Facing image-left shows the runner's left side to the camera.
    return "side-left" if facing < 0 else "side-right"


class ViewDetector:
    """Majority of the recent per-frame guesses, with hysteresis; or the pinned view."""

    def __init__(self, pinned: Optional[View], fps: float, seconds: float = 1.5) -> None:
        self.pinned = pinned
        self._votes: deque[View] = deque(maxlen=max(5, int(seconds * fps)))
        self.view: Optional[View] = pinned

    def update(self, xy: Optional[np.ndarray], seen: Optional[np.ndarray]) -> Optional[View]:
        if self.pinned is not None:
            return self.pinned
        if xy is None or seen is None:
            return self.view
        guess = frame_view(xy, seen)
        if guess is not None:
            self._votes.append(guess)
        if len(self._votes) >= min(5, self._votes.maxlen or 5):
            best, count = Counter(self._votes).most_common(1)[0]
            if best != self.view and count >= 0.6 * len(self._votes):
                self.view = best
        return self.view

    def reset(self) -> None:
        self._votes.clear()
        self.view = self.pinned
