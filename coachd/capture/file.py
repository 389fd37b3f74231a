"""Video files: any format OpenCV's FFmpeg backend reads.

Two clocks, chosen by `realtime`:
- realtime=True (live coaching from a recording): each frame is released at its due time
  after the first read, Frame.t = time.monotonic() at release, shrunk to the size the pose
  stage needs (capture.open.fit_for_pose) in the reading thread. A consumer that falls behind
  gets the newest due frame, as from a camera; the skipped ones count in frames_dropped.
- realtime=False (analysis): frames as fast as the consumer reads, none skipped, and
  Frame.t = seq / fps, the time in the file, so the same file always gives the same result.
Frame.seq is the frame's index in the file.

A phone's slow motion stores frames captured at, say, 240 fps to play at 30: `capture_fps` is
the rate the file's tags say the frames were taken at (Android writes
`com.android.capture.fps`), and `set_capture_rate` puts analysis times on that clock.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import subprocess
import time
from collections import deque
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from coachd.capture import FrameSource
from coachd.capture.open import Orientation, fit_for_pose
from coachd.errors import BadSourceError
from coachd.messages import Frame
from coachd.settings import CameraSettings

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
MAX_CAPTURE_FPS = 1000.0
PROBE_TAGS = ("-v", "error", "-of", "json", "-show_entries", "format_tags:stream_tags")
CAPTURE_RATE_TAG = re.compile(r"capture[._-]?fps", re.IGNORECASE)


class FileSource(FrameSource):
    live = False
    finite = True

    def __init__(
        self,
        name: str,
        capture: cv2.VideoCapture,
        held: list[np.ndarray],
        camera: CameraSettings,
        realtime: bool,
    ) -> None:
        self.name = name
        self.realtime = realtime
        self.frames_dropped = 0
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        self.stored_fps = fps if 0 < fps < MAX_CAPTURE_FPS else DEFAULT_FPS  # the rate it plays at
        self.nominal_fps = self.stored_fps  # the rate its frames were captured at
        self.capture_fps: Optional[float] = None  # what the file's tags say, when they do
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count: Optional[int] = int(count) if count > 0 else None
        self.file_size = (int(held[0].shape[1]), int(held[0].shape[0]))  # width, height
        self._capture = capture
        self._orientation = Orientation.of(camera)
        self._held = deque(held)  # decoded at open to catch bad files and still images
        self._next = 0
        self._started: Optional[float] = None
        self._ended = False

    @classmethod
    def open(cls, spec: str, camera: CameraSettings, realtime: bool) -> FileSource:
        """Open and decode the start of the file; BadSourceError when it is no usable video."""
        path = Path(spec).expanduser()
        name = f"video file {spec}"
        if not path.exists():
            raise BadSourceError(
                f"{name}: no such file (sources: auto, a camera index, /dev/videoN, "
                "a video file, rtsp:// or http:// URL, synthetic:)"
            )
        if path.is_dir():
            raise BadSourceError(f"{name}: is a directory, not a video file")
        if path.is_char_device() or path.is_block_device():
            raise BadSourceError(f"{name}: is a device, not a video file (cameras: /dev/videoN)")
        if not os.access(path, os.R_OK):
            raise BadSourceError(f"{name}: permission denied")
        if path.is_file() and path.stat().st_size == 0:
            raise BadSourceError(f"{name}: is empty (0 bytes), not a video file")
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            capture.release()
            raise BadSourceError(f"{name}: not a video OpenCV can read (unknown format or corrupt)")
        # FFmpeg opens a still image as a 1-frame video, which would give a run of one frame
        # and exit 0: where the file does not count several frames, decode a second one.
        several = capture.get(cv2.CAP_PROP_FRAME_COUNT) > 1
        held = _first_frames(capture, 1 if several else 2)
        if not held:
            capture.release()
            raise BadSourceError(f"{name}: no decodable video frame (corrupt or empty)")
        if not several and len(held) < 2:
            capture.release()
            raise BadSourceError(
                f"{name}: is a single image, not a video; give a video file (mp4, mkv, avi, "
                "mov), a camera or a stream"
            )
        source = cls(name, capture, held, camera, realtime)
        source.capture_fps = tagged_capture_fps(path)
        log.info("%s", source.describe())
        return source

    def set_capture_rate(self, fps: float) -> None:
        """The frames were captured at `fps` (slow motion: faster than they play): analysis
        times count at that rate.  Pacing a file to real time keeps the rate it plays at."""
        self.nominal_fps = fps

    def describe(self) -> str:
        width, height = self.file_size
        length = (
            f", {self.frame_count} frames ({self.frame_count / self.stored_fps:.1f} s)"
            if self.frame_count
            else ""
        )
        pace = "paced to real time" if self.realtime else "as fast as read"
        if self.nominal_fps != self.stored_fps:
            pace += f", captured at {self.nominal_fps:g} fps"
        turned = str(self._orientation)
        return f"{self.name}: {width}x{height} @ {self.stored_fps:g} fps{length}, {pace}" + (
            f", {turned}" if turned else ""
        )

    def read(self) -> Optional[Frame]:
        if self._ended:
            return None
        if self.realtime:
            self._wait_for_due_frame()
        image = self._decode_next()
        if image is None:
            self._end()
            return None
        seq = self._next
        self._next += 1
        t = time.monotonic() if self.realtime else seq / self.nominal_fps
        if self.realtime:
            image = fit_for_pose(image)
        return Frame(seq=seq, t=t, image=self._orientation.apply(image))

    def _wait_for_due_frame(self) -> None:
        now = time.monotonic()
        if self._started is None:
            self._started = now
        newest_due = math.floor((now - self._started) * self.stored_fps)
        while self._next < newest_due:  # fell behind: skip to the newest due frame
            if not self._skip_one():
                return
        delay = self._started + self._next / self.stored_fps - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def _skip_one(self) -> bool:
        if self._held:
            self._held.popleft()
        elif not self._capture.grab():
            return False
        self._next += 1
        self.frames_dropped += 1
        return True

    def _decode_next(self) -> Optional[np.ndarray]:
        if self._held:
            return self._held.popleft()
        ok, image = self._capture.read()
        return image if ok else None

    def _end(self) -> None:
        self._ended = True
        self._capture.release()
        expected = self.frame_count
        # Some containers only estimate their frame count (duration x rate): a small
        # shortfall is normal, a large one is a file cut short or damaged.
        if expected and self._next < expected - max(3, expected // 20):
            raise BadSourceError(
                f"{self.name}: cannot decode past frame {self._next} of {expected} "
                "(truncated or corrupt)"
            )

    def close(self) -> None:
        self._ended = True
        self._capture.release()


def _first_frames(capture: cv2.VideoCapture, wanted: int) -> list[np.ndarray]:
    """Up to `wanted` frames from the start; fewer where the file has no more."""
    frames: list[np.ndarray] = []
    while len(frames) < wanted:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    return frames


def tagged_capture_fps(path: Path) -> Optional[float]:
    """The capture rate the file's metadata states (a phone's slow motion), read with
    ffprobe; None when it states none or ffprobe is not installed."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return None
    try:
        probe = subprocess.run(
            [ffprobe, *PROBE_TAGS, "--", str(path)],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        found = json.loads(probe.stdout or "{}")
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    tags = dict(found.get("format", {}).get("tags", {}))
    for stream in found.get("streams", []):
        tags.update(stream.get("tags", {}))
    for key, value in tags.items():
        if CAPTURE_RATE_TAG.search(key):
            try:
                rate = float(value)
            except ValueError:
                continue
            if 0 < rate <= MAX_CAPTURE_FPS:
                return rate
    return None
