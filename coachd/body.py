"""Body geometry that the pose and gait stages both read from the 33 landmarks.

Landmark groups, which landmarks count as seen, the torso length that scales what is measured
in pixels, and which way the runner faces: one rule, so the pose stage's mirroring and the gait
stage's view cannot disagree about it.
"""

from __future__ import annotations

from typing import Union

import numpy as np

from coachd.messages import Landmark, Pose

SHOULDERS = (Landmark.LEFT_SHOULDER, Landmark.RIGHT_SHOULDER)
HIPS = (Landmark.LEFT_HIP, Landmark.RIGHT_HIP)
EARS = (Landmark.LEFT_EAR, Landmark.RIGHT_EAR)
# Leg landmarks (knee, ankle, heel, toe) of each side, swapped together when labels flip.
LEFT_LEG = (Landmark.LEFT_KNEE, Landmark.LEFT_ANKLE, Landmark.LEFT_HEEL, Landmark.LEFT_FOOT_INDEX)
RIGHT_LEG = (
    Landmark.RIGHT_KNEE,
    Landmark.RIGHT_ANKLE,
    Landmark.RIGHT_HEEL,
    Landmark.RIGHT_FOOT_INDEX,
)

# A landmark counts as seen when the model is this sure of it and it lies inside the image.
MIN_VISIBILITY = 0.5
# The nose this far ahead of the ears (share of the torso length) shows which way the runner
# faces; in front and rear views it sits between them.
FACING_MIN_SHARE = 0.04


def seen_mask(pose: Pose, min_visibility: float = MIN_VISIBILITY) -> np.ndarray:
    """Landmarks visible enough and inside the image."""
    width, height = pose.image_size
    x, y = pose.xy[:, 0], pose.xy[:, 1]
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    return np.asarray((pose.visibility >= min_visibility) & inside, dtype=bool)


def midpoint(xy: np.ndarray, pair: tuple[int, int]) -> np.ndarray:
    """The middle of a landmark pair, for one frame (33, 2) or many (..., 33, 2)."""
    return np.asarray((xy[..., pair[0], :] + xy[..., pair[1], :]) / 2.0)


def torso_length(xy: np.ndarray) -> Union[float, np.ndarray]:
    """Shoulders' midpoint to hips' midpoint: a float for one frame, an array for many."""
    length = np.linalg.norm(midpoint(xy, SHOULDERS) - midpoint(xy, HIPS), axis=-1)
    return float(length) if np.ndim(length) == 0 else np.asarray(length)


def facing_sign(xy: np.ndarray, seen: np.ndarray) -> int:
    """+1 when the runner faces image-right, -1 image-left, 0 when it cannot be told: the nose
    ahead of the seen ears by FACING_MIN_SHARE of the torso."""
    ears = [i for i in EARS if seen[i]]
    if not seen[Landmark.NOSE] or not ears:
        return 0
    torso = float(torso_length(xy))
    if torso < 1.0:
        return 0
    ahead = float(xy[Landmark.NOSE, 0] - np.mean([xy[i, 0] for i in ears])) / torso
    if abs(ahead) < FACING_MIN_SHARE:
        return 0
    return 1 if ahead > 0 else -1
