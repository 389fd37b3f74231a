"""USB / built-in cameras through OpenCV's V4L2 backend, read by a newest-frame grab thread."""

from __future__ import annotations

import logging
import math
import os
import re
import sys
from pathlib import Path

import cv2

from coachd.capture.live import LiveCaptureSource
from coachd.errors import SourceError, SourceSpecError
from coachd.settings import CameraSettings

log = logging.getLogger(__name__)

DEV = Path("/dev")
BY_ID = DEV / "v4l" / "by-id"
# OpenCV's V4L2 backend waits this many whole seconds in select() for each frame (10 by
# default). It reads the variable once, at the first camera read of the process.
SELECT_TIMEOUT_ENV = "OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT"


def video_devices() -> list[Path]:
    """/dev/video* in numeric order."""

    def number(path: Path) -> int:
        digits = re.sub(r"\D", "", path.name)
        return int(digits) if digits else -1

    return sorted(DEV.glob("video*"), key=number)


def by_id_links() -> list[Path]:
    """/dev/v4l/by-id/* links: stable names that survive replugging into another port."""
    return sorted(BY_ID.glob("*")) if BY_ID.is_dir() else []


def fourcc_text(code: float) -> str:
    value = int(code)
    text = "".join(chr((value >> (8 * i)) & 0xFF) for i in range(4))
    return text if text.isprintable() and value else "?"


def _present() -> str:
    devices = [str(d) for d in video_devices()]
    return ", ".join(devices) if devices else "none"


def _device_path(spec: str) -> Path:
    return DEV / f"video{spec}" if spec.isdigit() else Path(spec)


def device_present(spec: str) -> bool:
    """The camera's device node exists: a cheap sign that an unplugged camera is back."""
    if not sys.platform.startswith("linux"):
        return False  # no device nodes to look at: the back-off runs its course
    return _device_path(spec).exists()


def resolve_device(spec: str) -> Path:
    """The /dev/videoN behind a camera index, device path or /dev/v4l/... link."""
    path = _device_path(spec)
    if not os.path.lexists(path):
        raise SourceError(f"camera {spec}: no such device {path} (cameras present: {_present()})")
    real = Path(os.path.realpath(path))
    if not real.exists():
        raise SourceError(f"camera {spec}: {path} points to {real}, which is gone (unplugged?)")
    if not os.access(real, os.R_OK | os.W_OK):
        raise SourceError(
            f"camera {spec}: permission denied on {real}; add the user to the 'video' group"
        )
    return real


class CameraSource(LiveCaptureSource):
    """A V4L2 camera; `describe()` tells the mode actually obtained."""

    @classmethod
    def open(cls, spec: str, camera: CameraSettings) -> CameraSource:
        if sys.platform.startswith("linux"):
            device = resolve_device(spec)
            linked = spec.startswith("/dev/v4l/")
            name = f"camera {spec} ({device})" if linked else f"camera {device}"
            # Set before the first read: afterwards OpenCV no longer looks at it.
            os.environ[SELECT_TIMEOUT_ENV] = str(max(1, math.ceil(camera.read_timeout_s)))
            capture = cv2.VideoCapture(str(device), cv2.CAP_V4L2)
        else:  # other systems: the default backend, by index only
            if not spec.isdigit():
                raise SourceSpecError(
                    f"camera {spec}: device paths work on Linux only; use an index"
                )
            name = f"camera {spec}"
            capture = cv2.VideoCapture(int(spec))
        if not capture.isOpened():
            capture.release()
            raise SourceError(
                f"{name}: cannot open it (busy in another program, or not a capture device)"
            )
        _configure(capture, camera)
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        source = cls(
            name,
            capture,
            camera,
            mode=_mode(capture),
            nominal_fps=fps if 0 < fps < 1000 else float(camera.fps),
            failure_hint="stopped delivering frames (unplugged or failing?)",
        )
        log.info("%s", source.describe())
        asked = f"{camera.width}x{camera.height} @ {camera.fps} fps"
        if not source.mode.startswith(asked):
            log.warning("%s: asked for %s %s, got %s", name, asked, camera.fourcc, source.mode)
        return source


def _configure(capture: cv2.VideoCapture, camera: CameraSettings) -> None:
    # The pixel format first: many USB webcams give 30/60 fps at 720p only as MJPG, and the
    # driver picks the size within the current format.
    if camera.fourcc.strip():
        capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*camera.fourcc))
    capture.set(cv2.CAP_PROP_FRAME_WIDTH, camera.width)
    capture.set(cv2.CAP_PROP_FRAME_HEIGHT, camera.height)
    capture.set(cv2.CAP_PROP_FPS, camera.fps)
    capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)


def _mode(capture: cv2.VideoCapture) -> str:
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = capture.get(cv2.CAP_PROP_FPS)
    fourcc = fourcc_text(capture.get(cv2.CAP_PROP_FOURCC))
    return f"{width}x{height} @ {fps:g} fps {fourcc}"
