"""Network cameras: RTSP and HTTP MJPEG through OpenCV's FFmpeg backend, newest frame wins."""

from __future__ import annotations

import logging
import os
import time

import cv2

from coachd.capture.live import LiveCaptureSource
from coachd.errors import SourceError
from coachd.redact import redact
from coachd.settings import CameraSettings

log = logging.getLogger(__name__)

# OpenCV hands these FFmpeg options (key;value|key;value) to every FFmpeg open.
FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"


class UrlSource(LiveCaptureSource):
    """An rtsp:// or http(s):// stream; a stall or disconnect raises SourceError."""

    @classmethod
    def open(cls, url: str, camera: CameraSettings) -> UrlSource:
        name = f"stream {redact(url)}"
        # FFmpeg's own timeouts bound the connect and each read, so the grab thread
        # never sits in a dead connection.
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(camera.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(camera.read_timeout_s * 1000),
        ]
        if url.lower().startswith(("rtsp://", "rtsps://")):
            # RTP over UDP loses packets (grey smears) on Wi-Fi and does not cross NAT;
            # interleaved TCP works with every camera. The environment may say otherwise.
            os.environ.setdefault(FFMPEG_OPTIONS_ENV, "rtsp_transport;tcp")
        started = time.monotonic()
        capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
        if not capture.isOpened():
            capture.release()
            raise SourceError(
                f"{name}: cannot connect (after {time.monotonic() - started:.1f} s): "
                "unreachable, refused, wrong path or not a video stream"
            )
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        nominal_fps = fps if 0 < fps < 1000 else float(camera.fps)
        source = cls(
            name,
            capture,
            camera,
            mode=f"{width}x{height} @ {nominal_fps:g} fps",
            nominal_fps=nominal_fps,
            failure_hint="disconnected or ended",
        )
        log.info("%s", source.describe())
        return source
