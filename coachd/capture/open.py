"""`open_source`: turn a source string from the settings into a FrameSource.

Kinds: "auto" (first camera that opens, else the synthetic runner), a camera index ("0"),
/dev/videoN, /dev/v4l/by-id/..., "synthetic:?...", rtsp://, http(s):// (MJPEG network
cameras), and anything else is a video file path.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

import cv2
import numpy as np

from coachd.capture import FrameSource
from coachd.errors import BadSourceError, SourceError, SourceSpecError
from coachd.settings import CameraSettings

if TYPE_CHECKING:
    from coachd.capture.synthetic import SyntheticSource

log = logging.getLogger(__name__)

URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")
SYNTHETIC_PREFIX = "synthetic:"
NO_CAMERA_NOTICE = "no camera found: coaching the demo runner instead"
# The demo runner for a first run without a camera: it overstrides (the coach's top cue) and
# lands under its hips DEMO_REACTION_S after the coach's first correction (the daemon tells it,
# `SyntheticSource.fix_after`), or at DEMO_FIX_AT_S if no correction came by then.
DEMO_REACTION_S = 3.0
DEMO_FIX_AT_S = 50.0
DEMO_SOURCE = f"{SYNTHETIC_PREFIX}?overstride=0.35&fix_at={DEMO_FIX_AT_S:g}"

_ROTATIONS = {
    90: cv2.ROTATE_90_CLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_COUNTERCLOCKWISE,
}


# The pose models see the runner through crops of 224 and 256 pixels: a live frame larger than
# this only costs time in every later copy and warp (a 1080x1920 phone clip is halved).
POSE_LONG_SIDE = 960


def fit_for_pose(image: np.ndarray, long_side: int = POSE_LONG_SIDE) -> np.ndarray:
    """The image shrunk (area-averaged) to `long_side` pixels at most; unchanged if smaller."""
    height, width = image.shape[:2]
    scale = long_side / max(height, width)
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class Orientation:
    """How to turn each image upright: clockwise rotation, then an optional mirror."""

    rotation: int = 0
    mirror: bool = False

    @classmethod
    def of(cls, camera: CameraSettings) -> Orientation:
        return cls(int(camera.rotation), camera.mirror)

    def apply(self, image: np.ndarray) -> np.ndarray:
        if self.rotation:
            image = cv2.rotate(image, _ROTATIONS[self.rotation])
        if self.mirror:
            image = cv2.flip(image, 1)
        return image

    def __str__(self) -> str:
        parts = [f"rotated {self.rotation}°"] if self.rotation else []
        if self.mirror:
            parts.append("mirrored")
        return ", ".join(parts)


def open_source(spec: str, camera: CameraSettings, realtime: bool) -> FrameSource:
    """Open the source named by `spec`; raise SourceError naming it when it cannot be used.

    `realtime` matters for files and the synthetic runner: True paces them like a camera,
    False reads as fast as possible with file time stamps (analysis).
    """
    _quiet_video_libraries()
    spec = spec.strip()
    if not spec:
        raise SourceSpecError(
            "empty source: use auto, a camera index, /dev/videoN, a video file, a URL or synthetic:"
        )
    if spec == "auto":
        return _open_auto(camera, realtime)
    if spec.startswith(SYNTHETIC_PREFIX):
        return open_synthetic(spec, realtime)
    if spec.lower().startswith(URL_SCHEMES):
        from coachd.capture.url import UrlSource

        return UrlSource.open(spec, camera)
    if is_camera_spec(spec):
        from coachd.capture.camera import CameraSource

        return CameraSource.open(spec, camera)
    from coachd.capture.file import FileSource

    return FileSource.open(spec, camera, realtime)


def source_probe(spec: str) -> Optional[Callable[[], bool]]:
    """A cheap check that a lost camera or stream may be back, for cutting a back-off short:
    the device node exists, the host accepts a TCP connection. None for other kinds."""
    spec = spec.strip()
    if spec.lower().startswith(URL_SCHEMES):
        from coachd.capture.url import accepts_connection

        return lambda: accepts_connection(spec)
    if is_camera_spec(spec):
        from coachd.capture.camera import device_present

        return lambda: device_present(spec)
    return None


def _quiet_video_libraries() -> None:
    """FFmpeg and OpenCV print their own lines on a bad file or a lost stream, repeating less
    clearly the one line coachd gives; kept when debugging or when the environment says."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        return
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "0")  # AV_LOG_PANIC; read at the first open
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.setLogLevel(2)  # errors only: no warnings such as "can't capture by name"


def is_camera_spec(spec: str) -> bool:
    """A camera index, /dev/videoN or a /dev/v4l/... link."""
    return bool(re.fullmatch(r"\d+", spec)) or spec.startswith(("/dev/video", "/dev/v4l/"))


def open_synthetic(spec: str, realtime: bool) -> FrameSource:
    return synthetic_source_class().from_spec(spec, realtime)


def synthetic_source_class() -> type[SyntheticSource]:
    """The synthetic runner's source class, imported on first use (it is a large module)."""
    try:
        from coachd.capture.synthetic import SyntheticSource
    except ImportError as exc:
        raise BadSourceError(f"the synthetic runner is not available ({exc})") from None
    return SyntheticSource


def is_demo(spec: str, source: Optional[FrameSource]) -> bool:
    """Whether `auto` fell back to the demo runner (no camera on this machine)."""
    return spec.strip() == "auto" and source is not None and source.name == "synthetic"


def _open_auto(camera: CameraSettings, realtime: bool) -> FrameSource:
    from coachd.capture.camera import CameraSource, video_devices

    for device in video_devices():
        try:
            return CameraSource.open(str(device), camera)
        except SourceError as exc:
            log.info("auto: %s", exc)
    log.warning(NO_CAMERA_NOTICE)
    try:
        return open_synthetic(DEMO_SOURCE, realtime)
    except SourceError as exc:
        raise type(exc)(f"auto: no camera found, and {exc}") from None
