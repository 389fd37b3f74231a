"""Optional session recordings: a skeleton-overlay video per session, faces blurred.

Only when `service.record` asks for it: by default coachd keeps no images at all. Encoding
runs on its own thread behind a short queue, so a slow disk drops recorded frames (counted),
never coaching frames.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from coachd.errors import CoachdError
from coachd.gait.overlay import OverlayWriter
from coachd.messages import GaitUpdate, Pose

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Start:
    session_id: int


@dataclass(frozen=True)
class _Frame:
    image: np.ndarray
    t: float
    pose: Optional[Pose]
    update: GaitUpdate


_END = "end"
_STOP = "stop"
_Item = Union[_Start, _Frame, str]


class SessionRecorder:
    """Writes `<folder>/session-<id>.mp4` for each session between start and end."""

    def __init__(self, folder: Path, fps: float, blur_faces: bool, queue_frames: int = 60):
        self.folder = folder
        self._fps = fps
        self._blur_faces = blur_faces
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=queue_frames)
        self._recording = False
        self.dropped = 0
        self._written = 0  # frames in the current session's file
        self._session_id = 0
        self._thread = threading.Thread(target=self._run, name="coachd-recorder", daemon=True)
        self._thread.start()

    def start_session(self, session_id: int) -> None:
        self._recording = True
        self._put_control(_Start(session_id))

    def add(self, image: np.ndarray, t: float, pose: Optional[Pose], update: GaitUpdate) -> None:
        """Queue one frame of the current session; never blocks."""
        if not self._recording:
            return
        try:
            self._queue.put_nowait(_Frame(image, t, pose, update))
        except queue.Full:
            self.dropped += 1

    def end_session(self) -> None:
        if self._recording:
            self._recording = False
            self._put_control(_END)

    def close(self, timeout: float = 2.0) -> None:
        self.end_session()
        self._put_control(_STOP)
        self._thread.join(timeout)

    def _put_control(self, item: _Item) -> None:
        """Queue a start, end or stop without blocking the coaching thread on a slow disk:
        a waiting frame makes room for it (counted as dropped)."""
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _run(self) -> None:
        writer: Optional[OverlayWriter] = None
        while True:
            item = self._queue.get()
            if isinstance(item, _Frame):
                if writer is not None:
                    writer = self._write(writer, item)
                continue
            if writer is not None:
                self._close(writer)
                writer = None
            if isinstance(item, _Start):
                writer = self._open(item.session_id)
            elif item == _STOP:
                return

    def _open(self, session_id: int) -> Optional[OverlayWriter]:
        """A writer for the session's video; None (logged, coaching goes on) when the folder
        or the file cannot be written."""
        path = self.folder / f"session-{session_id}.mp4"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            writer = OverlayWriter(path, self._fps, blur_faces=self._blur_faces)
        except (CoachdError, OSError) as exc:
            log.error("cannot record session %d to %s: %s", session_id, path, exc)
            return None
        log.info("recording session %d to %s", session_id, path)
        self._session_id, self._written = session_id, 0
        return writer

    def _close(self, writer: OverlayWriter) -> None:
        try:
            writer.close()
        except (CoachdError, OSError) as exc:
            log.error("recording not finished: %s", exc)
            return
        log.info(
            "recorded session %d: %d frames (%d dropped in all while the disk was busy)",
            self._session_id,
            self._written,
            self.dropped,
        )

    def _write(self, writer: OverlayWriter, frame: _Frame) -> Optional[OverlayWriter]:
        try:
            writer.write(frame.image, frame.pose, frame.update)
            self._written += 1
            return writer
        except (CoachdError, OSError) as exc:
            log.error("recording stopped for this session: %s", exc)
            self._close(writer)
            return None
