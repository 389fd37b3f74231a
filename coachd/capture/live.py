"""A grab thread for live sources: only the newest frame is kept, so nothing goes stale.

A camera or stream delivers frames on its own clock. If the consumer (the pose model) is
slower, a queue would grow old; instead each new frame replaces the unread one, and the
replaced frames are counted as dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, NamedTuple, Optional

import cv2
import numpy as np

from coachd.capture import FrameSource
from coachd.capture.open import Orientation, fit_for_pose
from coachd.errors import SourceError
from coachd.messages import Frame
from coachd.settings import CameraSettings

log = logging.getLogger(__name__)

CLOSE_WAIT_S = 1.0

ReadImage = Callable[[], Optional[np.ndarray]]


class Grabbed(NamedTuple):
    seq: int  # index among all grabbed frames, from 0
    t: float  # time.monotonic() when grabbed
    image: np.ndarray
    dropped: int  # frames overwritten unread so far


class NewestFrameGrabber:
    """Calls `read_image` on a thread; `wait_newer` returns the newest frame not yet taken.

    The thread owns the device: `release` runs on it when it stops, because releasing an
    OpenCV capture while another thread is inside its read() is unsafe.
    """

    def __init__(
        self,
        name: str,
        read_image: ReadImage,
        release: Callable[[], None],
        stall_after_s: float,
        first_frame_within_s: float,
        failure_hint: str = "stopped delivering frames",
    ) -> None:
        self.name = name
        self.dropped = 0
        self.captured = 0
        self._read_image = read_image
        self._release = release
        self._stall_after_s = stall_after_s
        self._first_frame_within_s = max(first_frame_within_s, stall_after_s)
        self._failure_hint = failure_hint
        self._cond = threading.Condition()
        self._pending: Optional[tuple[int, float, np.ndarray]] = None
        self._failure: Optional[str] = None
        self._stop = threading.Event()
        self._started_at = 0.0
        self._last_capture_t: Optional[float] = None
        self._thread = threading.Thread(target=self._run, name=f"grab {name}", daemon=True)

    def start(self) -> None:
        self._started_at = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                image = self._read_image()
                t = time.monotonic()
                if self._stop.is_set():
                    break
                if image is None:
                    self._fail(f"{self.name} {self._failure_hint}")
                    break
                with self._cond:
                    if self._pending is not None:
                        self.dropped += 1
                    self._pending = (self.captured, t, image)
                    self.captured += 1
                    self._last_capture_t = t
                    self._cond.notify_all()
        except Exception as exc:  # a driver error must reach the consumer, not kill silently
            self._fail(f"{self.name} failed: {type(exc).__name__}: {exc}")
        finally:
            try:
                self._release()
            except Exception:  # releasing a broken device may fail too; nothing more to do
                log.debug("releasing %s failed", self.name, exc_info=True)

    def _fail(self, message: str) -> None:
        with self._cond:
            self._failure = message
            self._cond.notify_all()

    def wait_newer(self) -> Grabbed:
        """The newest frame not returned before.

        Raises SourceError when the source failed, or when no frame has arrived for
        `stall_after_s` (the first frame gets `first_frame_within_s`).
        """
        with self._cond:
            while self._pending is None:
                if self._stop.is_set():
                    raise SourceError(f"{self.name} is closed")
                if self._failure is not None:
                    raise SourceError(self._failure)
                if self._last_capture_t is None:
                    since, allowed = self._started_at, self._first_frame_within_s
                else:
                    since, allowed = self._last_capture_t, self._stall_after_s
                remaining = since + allowed - time.monotonic()
                if remaining <= 0:
                    what = "no first frame" if self._last_capture_t is None else "no frame"
                    raise SourceError(f"{self.name} stalled: {what} for {allowed:.1f} s")
                self._cond.wait(remaining)
            (seq, t, image), self._pending = self._pending, None
            return Grabbed(seq, t, image, self.dropped)

    def stop(self, wait_s: float) -> None:
        """Ask the thread to stop and wait at most `wait_s` (a hung driver is left behind)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()  # a reader waiting on another thread learns it is closed
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(wait_s)
            if self._thread.is_alive():
                log.warning("%s: grab thread still blocked after %.1f s", self.name, wait_s)
        elif not self._thread.is_alive() and self._started_at == 0.0:
            self._release()  # never started: nobody else will release it


class LiveCaptureSource(FrameSource):
    """An opened OpenCV capture (camera or stream) read by a NewestFrameGrabber.

    Frame.t is time.monotonic() when the frame was grabbed; Frame.seq counts every grabbed
    frame from 0, so a gap in seq is a dropped frame.
    """

    live = True
    finite = False

    def __init__(
        self,
        name: str,
        capture: cv2.VideoCapture,
        camera: CameraSettings,
        mode: str,
        nominal_fps: float,
        failure_hint: str,
        shrink: bool = False,
    ) -> None:
        """`shrink`: frames larger than the pose stage needs are shrunk as they are read."""
        self.name = name
        self._shrink = shrink
        self.mode = mode
        self.nominal_fps = nominal_fps
        self.frames_dropped = 0
        self._orientation = Orientation.of(camera)
        self._grabber = NewestFrameGrabber(
            name,
            lambda: read_image(capture),
            capture.release,
            stall_after_s=camera.read_timeout_s,
            first_frame_within_s=camera.open_timeout_s,
            failure_hint=failure_hint,
        )
        self._grabber.start()

    def describe(self) -> str:
        """e.g. 'camera /dev/video0: 1280x720 @ 30 fps MJPG'."""
        turned = str(self._orientation)
        return f"{self.name}: {self.mode}" + (f", {turned}" if turned else "")

    def read(self) -> Optional[Frame]:
        grabbed = self._grabber.wait_newer()
        self.frames_dropped = grabbed.dropped
        image = fit_for_pose(grabbed.image) if self._shrink else grabbed.image
        return Frame(seq=grabbed.seq, t=grabbed.t, image=self._orientation.apply(image))

    def close(self) -> None:
        # Bounded: a driver stuck in read() releases the device itself when it returns
        # (within the backend's own timeout), and the caller must not wedge meanwhile.
        self._grabber.stop(CLOSE_WAIT_S)


def read_image(capture: cv2.VideoCapture) -> Optional[np.ndarray]:
    ok, image = capture.read()
    return image if ok else None
