"""Network cameras: RTSP and HTTP MJPEG through OpenCV's FFmpeg backend, newest frame wins."""

from __future__ import annotations

import base64
import http.client
import logging
import os
import socket
import ssl
import time
from typing import Optional
from urllib.parse import SplitResult, unquote, urlsplit

import cv2

from coachd.capture.live import LiveCaptureSource
from coachd.errors import BadSourceError, SourceError, SourceSpecError
from coachd.redact import escape_userinfo, redact
from coachd.settings import CameraSettings

log = logging.getLogger(__name__)

# OpenCV hands these FFmpeg options (key;value|key;value) to every FFmpeg open.
FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"


DEFAULT_PORTS = {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322}
PROBE_TIMEOUT_S = 0.3  # a loopback or LAN camera answers a TCP connect far sooner
ANSWER_TIMEOUT_S = 3.0
# What a camera's HTTP stream may be sent as; anything else (a web page, JSON) is no video.
VIDEO_CONTENT_TYPES = ("multipart/", "video/", "image/", "application/octet-stream")


def parse_stream_url(url: str) -> SplitResult:
    """The URL split into its parts; SourceSpecError when it has no host or a bad port."""
    why = ""
    try:
        parts = urlsplit(escape_userinfo(url.strip()))
        if not parts.hostname:
            why = "no host"
        elif parts.port == 0:
            why = "port 0"
    except ValueError as exc:  # a bad port number, an unclosed [IPv6 bracket
        why = str(exc)
    if why:
        raise SourceSpecError(
            f"stream {redact(url)}: not a valid URL ({why}); write "
            "rtsp://host[:port]/path or http://host[:port]/path"
        )
    return parts


def _address(parts: SplitResult) -> tuple[str, int]:
    return parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 80)


def accepts_connection(url: str) -> bool:
    """The stream's host accepts a TCP connection on its port (a cheap sign it is back)."""
    try:
        address = _address(urlsplit(escape_userinfo(url.strip())))
        with socket.create_connection(address, timeout=PROBE_TIMEOUT_S):
            return True
    except (OSError, ValueError):
        return False


def _raise_why_not_video(name: str, parts: SplitResult, timeout: float) -> None:
    """After a failed open of an http(s) stream: BadSourceError when the server answers but
    with no video (a web page, a wrong path, a refused login), which waiting cannot mend."""
    if parts.scheme.lower() not in ("http", "https"):
        return
    answer = _http_answer(parts, timeout)
    if answer is None:  # nothing answers: a camera that is off or booting
        return
    status, content_type = answer
    if status in (401, 403):
        raise BadSourceError(
            f"{name}: access denied (HTTP {status}); check the user and password in the URL"
        )
    if status in (404, 410):
        raise BadSourceError(f"{name}: no such path on the server (HTTP {status})")
    if 200 <= status < 300 and not content_type.lower().startswith(VIDEO_CONTENT_TYPES):
        raise BadSourceError(
            f"{name}: answers with {content_type or 'no content type'}, not a video stream; "
            "give the camera's MJPEG (multipart/x-mixed-replace) or RTSP stream URL"
        )


def _http_answer(parts: SplitResult, timeout: float) -> Optional[tuple[int, str]]:
    """(status, media type) of a GET of the URL; None when nothing answers."""
    host, port = _address(parts)
    connection: http.client.HTTPConnection
    if parts.scheme.lower() == "https":
        # Cameras mostly have self-signed certificates, and FFmpeg does not verify them either.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {}
    if parts.username is not None:
        login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(login.encode()).decode()
    path = parts.path or "/"
    try:
        connection.request("GET", f"{path}?{parts.query}" if parts.query else path, headers=headers)
        response = connection.getresponse()
        media_type = response.getheader("Content-Type", "").split(";")[0].strip()
        return response.status, media_type
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


class UrlSource(LiveCaptureSource):
    """An rtsp:// or http(s):// stream; a stall or disconnect raises SourceError."""

    @classmethod
    def open(cls, url: str, camera: CameraSettings) -> UrlSource:
        name = f"stream {redact(url)}"
        parts = parse_stream_url(url)
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
        capture = cv2.VideoCapture(escape_userinfo(url), cv2.CAP_FFMPEG, params)
        if not capture.isOpened():
            capture.release()
            waited = time.monotonic() - started
            _raise_why_not_video(name, parts, min(camera.open_timeout_s, ANSWER_TIMEOUT_S))
            raise SourceError(
                f"{name}: cannot connect (after {waited:.1f} s): "
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
            shrink=True,
        )
        log.info("%s", source.describe())
        return source
