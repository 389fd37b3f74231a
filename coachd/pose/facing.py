"""Which way the runner faces, and the mirrored view the pose model is given.

BlazePose keeps the legs of a runner who faces image-left apart far better than those of one
who faces image-right: on the real treadmill clip mirrored (runner facing right) it found 16
strides instead of 25 and misread cadence and contact time, and on the synthetic runner it
swapped the legs at most right-facing landings.  So while the runner faces right the model is
given the mirrored frame, and its landmarks are mirrored back with left and right exchanged:
downstream stages always see the real image's coordinates and the runner's own sides.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Optional

import numpy as np

from coachd.body import facing_sign, seen_mask
from coachd.messages import NUM_LANDMARKS, Landmark, Pose

# Each landmark's index once the image is mirrored: the runner's left becomes the right.
_PAIRS = [
    (Landmark.LEFT_EYE_INNER, Landmark.RIGHT_EYE_INNER),
    (Landmark.LEFT_EYE, Landmark.RIGHT_EYE),
    (Landmark.LEFT_EYE_OUTER, Landmark.RIGHT_EYE_OUTER),
    (Landmark.LEFT_EAR, Landmark.RIGHT_EAR),
    (Landmark.MOUTH_LEFT, Landmark.MOUTH_RIGHT),
] + [(Landmark(i), Landmark(i + 1)) for i in range(Landmark.LEFT_SHOULDER, NUM_LANDMARKS, 2)]
MIRRORED_INDEX = np.arange(NUM_LANDMARKS)
for _left, _right in _PAIRS:
    MIRRORED_INDEX[_left], MIRRORED_INDEX[_right] = _right, _left

FACING_WINDOW_S = 1.0  # the decision looks at this much recent tracking
FACING_AGREEMENT = 0.75  # share of the window's poses that must face the other way to switch
FACING_MIN_POSES = 10


def mirror_pose(pose: Pose) -> Pose:
    """A pose found on the mirrored image, in the real image's coordinates and sides."""
    index = MIRRORED_INDEX
    width = pose.image_size[0]

    def image_points(points: np.ndarray) -> np.ndarray:
        flipped = points[index].copy()
        flipped[:, 0] = width - flipped[:, 0]
        return flipped

    norm = pose.norm[index].copy()
    norm[:, 0] = 1.0 - norm[:, 0]
    world = pose.world[index].copy()
    world[:, 0] = -world[:, 0]
    return replace(
        pose,
        xy=image_points(pose.xy),
        raw_xy=None if pose.raw_xy is None else image_points(pose.raw_xy),
        norm=norm,
        world=world,
        visibility=pose.visibility[index].copy(),
        presence=pose.presence[index].copy(),
    )


class FacingWatch:
    """Decides, from the recent poses, whether the model should get the mirrored frame."""

    def __init__(self) -> None:
        self.mirrored = False
        self._recent: deque[tuple[float, int]] = deque()

    def reset(self) -> None:
        self.mirrored = False
        self._recent.clear()

    def update(self, pose: Optional[Pose], t: float) -> bool:
        """Take this frame's pose (real-image coordinates); True when `mirrored` changed."""
        if pose is not None:
            self._recent.append((t, facing_sign(pose.xy, seen_mask(pose))))
        while self._recent and self._recent[0][0] < t - FACING_WINDOW_S:
            self._recent.popleft()
        if len(self._recent) < FACING_MIN_POSES:
            return False
        signs = [sign for _, sign in self._recent]
        turned = -1 if self.mirrored else 1  # the facing that calls for the other choice
        if sum(1 for s in signs if s == turned) < FACING_AGREEMENT * len(signs):
            return False
        self.mirrored = not self.mirrored
        self._recent.clear()
        return True
