"""The pose stage's interface: `create_tracker(settings).track(frame) -> TrackedFrame`.

A backend (stock MediaPipe or coachd's own LiteRT graph) finds the runner's raw landmarks;
the tracker around it flags landmarks outside the image, smooths, and times the work.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Optional, Protocol

import numpy as np

from coachd.errors import ConfigError
from coachd.messages import NUM_LANDMARKS, Frame, Pose, TrackedFrame
from coachd.pose.smoothing import PoseSmoother
from coachd.settings import PoseSettings

# Visibility given to a landmark the model places outside the image: it was not seen.
OUTSIDE_VISIBILITY = 0.05


class PoseTracker(Protocol):
    """Follows one runner through a stream of frames."""

    name: str

    def track(self, frame: Frame) -> TrackedFrame:
        """Landmarks for this frame (pose None when nobody is in view)."""
        ...

    def reset(self) -> None:
        """Forget the tracked person (a new stream or a jump in time)."""
        ...

    def close(self) -> None:
        """Release the models."""
        ...


class PoseBackend(Protocol):
    """Raw landmarks for one image, with the backend's own person tracking."""

    name: str

    def estimate(self, image: np.ndarray, t: float) -> Optional[Pose]:
        """The runner's raw pose in a BGR image captured at time t (seconds), or None."""
        ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


def make_pose(
    norm: np.ndarray,
    visibility: np.ndarray,
    presence: np.ndarray,
    world: np.ndarray,
    image_size: tuple[int, int],
    score: float = 1.0,
) -> Pose:
    """A Pose from normalised landmarks, flagging those outside the image as not visible."""
    width, height = image_size
    norm = np.asarray(norm[:NUM_LANDMARKS], dtype=np.float32)
    xy = norm[:, :2] * np.array([width, height], dtype=np.float32)
    outside = (norm[:, 0] < 0.0) | (norm[:, 0] > 1.0) | (norm[:, 1] < 0.0) | (norm[:, 1] > 1.0)
    visibility = np.asarray(visibility[:NUM_LANDMARKS], dtype=np.float32).copy()
    visibility[outside] = np.minimum(visibility[outside], OUTSIDE_VISIBILITY)
    return Pose(
        image_size=(int(width), int(height)),
        xy=xy,
        norm=norm,
        visibility=visibility,
        presence=np.asarray(presence[:NUM_LANDMARKS], dtype=np.float32),
        world=np.asarray(world[:NUM_LANDMARKS], dtype=np.float32),
        score=float(score),
    )


class Tracker:
    """A PoseTracker around a backend: smoothing, timing and the TrackedFrame."""

    def __init__(self, backend: PoseBackend, settings: PoseSettings) -> None:
        self.backend = backend
        self.name = backend.name
        self._smoother: Optional[PoseSmoother] = None
        if settings.smoothing:
            self._smoother = PoseSmoother(settings.smoothing_min_cutoff_hz, settings.smoothing_beta)

    def track(self, frame: Frame) -> TrackedFrame:
        started = time.monotonic()
        pose = self.backend.estimate(frame.image, frame.t)
        if self._smoother is not None:
            if pose is None:
                self._smoother.reset()
            else:
                smoothed = self._smoother(pose, frame.t)
                # Smoothing must not carry a landmark back inside the image unseen.
                pose = replace(smoothed, visibility=pose.visibility)
        ready = time.monotonic()
        return TrackedFrame(
            seq=frame.seq,
            t=frame.t,
            t_ready=ready,
            pose=pose,
            pose_ms=(ready - started) * 1000.0,
            truth=frame.truth,
        )

    def reset(self) -> None:
        self.backend.reset()
        if self._smoother is not None:
            self._smoother.reset()

    def close(self) -> None:
        self.backend.close()


def create_tracker(settings: PoseSettings, backend: Optional[str] = None) -> PoseTracker:
    """The tracker named by `backend` (default: settings.backend)."""
    chosen = backend or settings.backend
    if chosen == "mediapipe":
        from coachd.pose.mediapipe_backend import MediaPipeBackend

        return Tracker(MediaPipeBackend(settings), settings)
    if chosen == "litert":
        from coachd.pose.litert_backend import LiteRTBackend

        return Tracker(LiteRTBackend(settings), settings)
    raise ConfigError(f"config error: pose.backend = {chosen!r}; allowed: litert, mediapipe")
