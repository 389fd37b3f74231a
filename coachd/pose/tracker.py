"""The pose stage's interface: `create_tracker(settings).track(frame) -> TrackedFrame`.

A backend (stock MediaPipe or coachd's own LiteRT graph) finds the runner's raw landmarks;
the tracker around it gives the model the mirrored frame while the runner faces image-right
(coachd.pose.facing), flags landmarks outside the image, smooths, and times the work.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Optional, Protocol

import cv2
import numpy as np

from coachd.errors import ConfigError
from coachd.messages import NUM_LANDMARKS, Frame, Pose, TrackedFrame
from coachd.pose.facing import FacingWatch, mirror_pose
from coachd.pose.smoothing import PoseSmoother
from coachd.settings import PoseSettings

log = logging.getLogger(__name__)

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


BackendFactory = Callable[[PoseSettings], PoseBackend]


def mirrored_settings(settings: PoseSettings) -> PoseSettings:
    """The settings as seen in the mirrored image (the treadmill region flips sides)."""
    region = settings.treadmill_region
    if region is None:
        return settings
    x0, y0, x1, y1 = region
    return settings.model_copy(update={"treadmill_region": (1.0 - x1, y0, 1.0 - x0, y1)})


class Tracker:
    """A PoseTracker around a backend: mirroring, smoothing, timing and the TrackedFrame."""

    def __init__(self, make_backend: BackendFactory, settings: PoseSettings) -> None:
        self._make_backend = make_backend
        self._settings = settings
        self.backend = make_backend(settings)
        self._mirrored_backend: Optional[PoseBackend] = None  # made when first needed
        self.name = self.backend.name
        self._facing: Optional[FacingWatch] = (
            FacingWatch() if settings.mirror_right_facing else None
        )
        self._smoother: Optional[PoseSmoother] = None
        if settings.smoothing:
            self._smoother = PoseSmoother(settings.smoothing_min_cutoff_hz, settings.smoothing_beta)

    @property
    def mirrored(self) -> bool:
        """Whether the model is being given mirrored frames (the runner faces image-right)."""
        return self._facing is not None and self._facing.mirrored

    def track(self, frame: Frame) -> TrackedFrame:
        started = time.monotonic()
        if self.mirrored:
            pose = self._mirror_backend().estimate(cv2.flip(frame.image, 1), frame.t)
            pose = mirror_pose(pose) if pose is not None else None
        else:
            pose = self.backend.estimate(frame.image, frame.t)
        return self._finish(frame, pose, started)

    def _finish(self, frame: Frame, pose: Optional[Pose], started: float) -> TrackedFrame:
        """Facing, smoothing and timing for the raw pose found in `frame` (in capture order)."""
        if self._facing is not None and self._facing.update(pose, frame.t):
            # The other backend's person tracking is stale: it must find the runner afresh.
            (self._mirror_backend() if self.mirrored else self.backend).reset()
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
        )

    def _mirror_backend(self) -> PoseBackend:
        if self._mirrored_backend is None:
            self._mirrored_backend = self._make_backend(mirrored_settings(self._settings))
        return self._mirrored_backend

    def reset(self) -> None:
        self.backend.reset()
        if self._mirrored_backend is not None:
            self._mirrored_backend.reset()
        if self._facing is not None:
            self._facing.reset()
        if self._smoother is not None:
            self._smoother.reset()

    def close(self) -> None:
        self.backend.close()
        if self._mirrored_backend is not None:
            self._mirrored_backend.close()


def create_tracker(
    settings: PoseSettings, backend: Optional[str] = None, fps: Optional[float] = None
) -> PoseTracker:
    """The tracker named by `backend` (default: settings.backend).

    `fps`, the live frame rate, lets the LiteRT tracker spread frames over the cores
    (coachd.pose.parallel); without it (analysis) frames are tracked one by one.
    """
    chosen = backend or settings.backend
    if chosen == "mediapipe":
        from coachd.pose.mediapipe_backend import MediaPipeBackend

        return Tracker(MediaPipeBackend, settings)
    if chosen == "litert":
        from coachd.pose.litert_backend import LiteRTBackend

        if fps is None:
            return Tracker(LiteRTBackend, settings)
        from coachd.pose.parallel import FrameParallelTracker, available_cores, choose_layout

        cores = available_cores()
        layout = choose_layout(cores, fps, settings.workers, settings.threads)
        log.info("pose: %s for %g fps on %d cores", layout, fps, cores)
        if layout.workers == 1:
            return Tracker(functools.partial(LiteRTBackend, threads=layout.threads), settings)
        return FrameParallelTracker(settings, layout)
    raise ConfigError(f"config error: pose.backend = {chosen!r}; allowed: litert, mediapipe")
