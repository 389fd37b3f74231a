"""The small typed messages that flow between pipeline stages.

capture -> Frame -> pose -> TrackedFrame -> gait -> GaitUpdate (events, strides)
-> coach -> Cue -> speech.  Arrays are numpy; times are time.monotonic() seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal, Optional

import numpy as np

Side = Literal["left", "right"]
View = Literal["side-left", "side-right", "front", "rear"]
VIEWS: tuple[View, ...] = ("side-left", "side-right", "front", "rear")
Activity = Literal["absent", "standing", "walking", "running"]
EventKind = Literal["contact", "toe_off"]
CueKind = Literal["correction", "praise", "program", "greeting", "summary"]


class Landmark(IntEnum):
    """BlazePose's 33 landmark indices (left/right are the runner's own)."""

    NOSE = 0
    LEFT_EYE_INNER = 1
    LEFT_EYE = 2
    LEFT_EYE_OUTER = 3
    RIGHT_EYE_INNER = 4
    RIGHT_EYE = 5
    RIGHT_EYE_OUTER = 6
    LEFT_EAR = 7
    RIGHT_EAR = 8
    MOUTH_LEFT = 9
    MOUTH_RIGHT = 10
    LEFT_SHOULDER = 11
    RIGHT_SHOULDER = 12
    LEFT_ELBOW = 13
    RIGHT_ELBOW = 14
    LEFT_WRIST = 15
    RIGHT_WRIST = 16
    LEFT_PINKY = 17
    RIGHT_PINKY = 18
    LEFT_INDEX = 19
    RIGHT_INDEX = 20
    LEFT_THUMB = 21
    RIGHT_THUMB = 22
    LEFT_HIP = 23
    RIGHT_HIP = 24
    LEFT_KNEE = 25
    RIGHT_KNEE = 26
    LEFT_ANKLE = 27
    RIGHT_ANKLE = 28
    LEFT_HEEL = 29
    RIGHT_HEEL = 30
    LEFT_FOOT_INDEX = 31
    RIGHT_FOOT_INDEX = 32


NUM_LANDMARKS = 33
# The 25 body landmarks (face mesh points 1-10 excluded) used for agreement and selection.
BODY_LANDMARKS: tuple[int, ...] = (0, *range(11, 33))


@dataclass(frozen=True)
class Frame:
    """One captured image with its monotonic capture time and sequence number."""

    seq: int
    t: float
    image: np.ndarray  # H x W x 3, BGR, uint8

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True)
class Pose:
    """The tracked runner's 33 landmarks in one frame."""

    image_size: tuple[int, int]  # (width, height)
    xy: np.ndarray  # (33, 2) image pixels
    norm: np.ndarray  # (33, 3) x, y normalised to the image; z relative depth
    visibility: np.ndarray  # (33,) 0..1
    presence: np.ndarray  # (33,) 0..1
    world: np.ndarray  # (33, 3) metres, origin between the hips
    score: float = 1.0
    # The model's own image landmarks when `xy` is smoothed (None: `xy` is not): the smoothing
    # lags a limb by a few degrees, too much for an angle read at one instant.
    raw_xy: Optional[np.ndarray] = None


@dataclass(frozen=True)
class TrackedFrame:
    """The pose stage's output for one frame: `pose` is None when nobody is in view."""

    seq: int
    t: float  # capture time
    t_ready: float  # when the landmarks were ready
    pose: Optional[Pose]
    pose_ms: float = 0.0


@dataclass(frozen=True)
class GaitEvent:
    t: float  # when it happened (capture time of its frame)
    side: Side
    kind: EventKind
    t_detected: float  # when the gait stage knew it (t_detected - t <= 0.15 s)
    confidence: float = 1.0


@dataclass(frozen=True)
class Stride:
    """Form metrics for one step, cut at the initial contact of `side`."""

    t: float  # the initial contact that starts it
    side: Side
    view: View
    duration_s: float
    metrics: dict[str, float]  # keys are the JSON names in docs/metrics.md
    confidence: dict[str, float] = field(default_factory=dict)
    t_detected: float = 0.0


@dataclass(frozen=True)
class GaitUpdate:
    """What the gait stage knows after one frame."""

    t: float
    activity: Activity
    view: Optional[View]
    events: tuple[GaitEvent, ...] = ()
    strides: tuple[Stride, ...] = ()
    # Since the start: stretches of frames whose leg labels the gait stage put right
    # (coachd.gait.legs).
    label_repairs: int = 0
    # Since the start: steps dropped as no runner could take them (coachd.gait.plausible).
    steps_rejected: int = 0


@dataclass(frozen=True)
class Cue:
    """One thing to say, as decided by the coach stage."""

    t_emit: float
    cue_id: str
    text: str
    kind: CueKind
    priority: int = 0
    chime: bool = False  # praise chime / earcon before the words
    metrics: tuple[str, ...] = ()  # what a correction or praise is about (its rule's metrics)
