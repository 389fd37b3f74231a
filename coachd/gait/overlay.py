"""Drawing for `coachd analyze --overlay`: skeleton, foot contacts and the latest metrics."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from coachd.body import seen_mask, torso_length
from coachd.catalog import METRICS
from coachd.errors import CoachdError, UsageError
from coachd.gait.activity import STILL_AFTER_S
from coachd.messages import Cue, GaitUpdate, Landmark, Pose, Stride

L = Landmark
BONES: tuple[tuple[int, int], ...] = (
    (L.LEFT_SHOULDER, L.RIGHT_SHOULDER),
    (L.LEFT_HIP, L.RIGHT_HIP),
    (L.LEFT_SHOULDER, L.LEFT_HIP),
    (L.RIGHT_SHOULDER, L.RIGHT_HIP),
    (L.LEFT_SHOULDER, L.LEFT_ELBOW),
    (L.LEFT_ELBOW, L.LEFT_WRIST),
    (L.RIGHT_SHOULDER, L.RIGHT_ELBOW),
    (L.RIGHT_ELBOW, L.RIGHT_WRIST),
    (L.LEFT_HIP, L.LEFT_KNEE),
    (L.LEFT_KNEE, L.LEFT_ANKLE),
    (L.LEFT_ANKLE, L.LEFT_HEEL),
    (L.LEFT_HEEL, L.LEFT_FOOT_INDEX),
    (L.LEFT_ANKLE, L.LEFT_FOOT_INDEX),
    (L.RIGHT_HIP, L.RIGHT_KNEE),
    (L.RIGHT_KNEE, L.RIGHT_ANKLE),
    (L.RIGHT_ANKLE, L.RIGHT_HEEL),
    (L.RIGHT_HEEL, L.RIGHT_FOOT_INDEX),
    (L.RIGHT_ANKLE, L.RIGHT_FOOT_INDEX),
)
LEFT_COLOUR = (255, 160, 40)  # BGR: the runner's left in blue, right in orange
RIGHT_COLOUR = (40, 140, 255)
CENTRE_COLOUR = (220, 220, 220)
CONTACT_MARK_S = 0.25
PANEL_FRESH_S = 1.5  # a step older than this leaves the panel: the runner has stopped stepping
CUE_SHOWN_S = 4.0  # a spoken cue stays on screen this long


def _colour(index: int) -> tuple[int, int, int]:
    name = Landmark(index).name
    if name.startswith("LEFT"):
        return LEFT_COLOUR
    if name.startswith("RIGHT"):
        return RIGHT_COLOUR
    return CENTRE_COLOUR


@dataclass
class OverlayWriter:
    """Writes the analysed video: call `write` with each frame, its pose, its gait update and
    the cues spoken at it. H.264 through the ffmpeg program, so browsers play it."""

    path: Path
    fps: float
    blur_faces: bool = False
    _video: Optional[H264Writer] = None
    _latest: Optional[Stride] = None
    _contacts: list[tuple[float, str, tuple[int, int]]] = field(default_factory=list)
    _cue: Optional[Cue] = None
    # Since when the gait stage has had fresh evidence (a runner appeared, a foot landed).
    _evidence_t: Optional[float] = None

    def write(
        self,
        image: np.ndarray,
        pose: Optional[Pose],
        update: GaitUpdate,
        cues: Sequence[Cue] = (),
    ) -> None:
        canvas = image.copy()
        if self._video is None:
            self._video = H264Writer(self.path, self.fps, canvas.shape[1], canvas.shape[0])
        t = update.t
        scale = max(1.0, canvas.shape[0] / 720.0)
        if pose is None:
            self._evidence_t = None
        elif self._evidence_t is None:
            self._evidence_t = t
        if pose is not None and self.blur_faces:
            blur_face(canvas, pose)
        if pose is not None:
            draw_skeleton(canvas, pose, scale)
            for event in update.events:
                if event.kind == "contact":
                    self._evidence_t = t
                    ankle = L.LEFT_HEEL if event.side == "left" else L.RIGHT_HEEL
                    point = (int(pose.xy[ankle, 0]), int(pose.xy[ankle, 1]))
                    self._contacts.append((event.t, event.side, point))
        self._contacts = [c for c in self._contacts if t - c[0] <= CONTACT_MARK_S]
        for _, side, point in self._contacts:
            colour = LEFT_COLOUR if side == "left" else RIGHT_COLOUR
            cv2.circle(canvas, point, int(14 * scale), colour, max(2, int(3 * scale)))
            cv2.putText(
                canvas,
                "IC " + side[0].upper(),
                (point[0] + int(16 * scale), point[1]),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.6 * scale,
                colour,
                max(1, int(2 * scale)),
                cv2.LINE_AA,
            )
        if update.strides:
            self._latest = update.strides[-1]
        if cues:
            self._cue = cues[-1]
        draw_panel(canvas, update, self._activity_label(update), self._latest, scale)
        if self._cue is not None and t - self._cue.t_emit <= CUE_SHOWN_S:
            draw_caption(canvas, f"{self._cue.kind}: {self._cue.text}", scale)
        self._video.write(canvas)

    def close(self) -> None:
        if self._video is not None:
            video, self._video = self._video, None
            video.close()

    def _activity_label(self, update: GaitUpdate) -> str:
        # The gait stage says "standing" until it has seen a few steps; only after
        # STILL_AFTER_S without a step is that what the runner is doing.
        warming_up = self._evidence_t is not None and update.t - self._evidence_t < STILL_AFTER_S
        if update.activity == "standing" and warming_up:
            return "activity ?"
        return update.activity


class H264Writer:
    """Frames piped to the ffmpeg program as H.264 in yuv420p, the index first (+faststart):
    what every browser plays, several times smaller than OpenCV's MPEG-4 Part 2."""

    def __init__(self, path: Path, fps: float, width: int, height: int) -> None:
        self.path = path
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            raise CoachdError(
                f"cannot write the video {path}: the ffmpeg program is not installed "
                "(apt install ffmpeg, or `make setup`)"
            )
        if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
            raise UsageError(
                f"cannot write the video {path}: {path.parent} is not a writable folder"
            )
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - ffmpeg's errors, closed in close()
        self._size = (width, height)
        self._process = subprocess.Popen(
            [
                ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
                "-framerate", f"{fps:g}", "-i", "-",
                # yuv420p needs an even width and height.
                "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
                "-movflags", "+faststart", str(path),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )  # fmt: skip

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size)
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(np.ascontiguousarray(image).tobytes())
        except BrokenPipeError:
            self._process.wait()
            raise CoachdError(f"cannot write the video {self.path}: {self._error()}") from None

    def close(self) -> None:
        assert self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # ffmpeg failed: its own error says why
            self._process.stdin.close()
        status = self._process.wait()
        error = self._error()
        self._log.close()
        if status != 0:
            raise CoachdError(f"cannot write the video {self.path}: {error}")

    def _error(self) -> str:
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        return f"ffmpeg: {lines[-1]}" if lines else f"ffmpeg exited {self._process.returncode}"


FACE_LANDMARKS = list(range(0, 11))  # nose, eyes, ears, mouth


def blur_face(canvas: np.ndarray, pose: Pose) -> None:
    """Blur a box around the head, in place: recordings must not identify gym members.

    The box is sized from the shoulders, not the face points, so a face turned away or
    half out of frame is still covered."""
    height, width = canvas.shape[:2]
    face = pose.xy[FACE_LANDMARKS]
    torso = float(torso_length(pose.xy))
    half = max(0.45 * torso, float(np.ptp(face, axis=0).max()), 12.0)
    cx, cy = face.mean(axis=0)
    x0, x1 = int(max(0, cx - half)), int(min(width, cx + half))
    y0, y1 = int(max(0, cy - 1.2 * half)), int(min(height, cy + half))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    kernel = max(3, (int(half) // 2) * 2 + 1)
    canvas[y0:y1, x0:x1] = cv2.GaussianBlur(canvas[y0:y1, x0:x1], (kernel, kernel), 0)


def draw_skeleton(canvas: np.ndarray, pose: Pose, scale: float = 1.0) -> None:
    seen = seen_mask(pose)
    thickness = max(1, int(2 * scale))
    for a, b in BONES:
        if seen[a] and seen[b]:
            pa = (int(pose.xy[a, 0]), int(pose.xy[a, 1]))
            pb = (int(pose.xy[b, 0]), int(pose.xy[b, 1]))
            cv2.line(canvas, pa, pb, _colour(b), thickness, cv2.LINE_AA)
    for index in (0, *range(11, 33)):
        if seen[index]:
            point = (int(pose.xy[index, 0]), int(pose.xy[index, 1]))
            cv2.circle(canvas, point, max(2, int(3 * scale)), _colour(index), -1, cv2.LINE_AA)


def draw_panel(
    canvas: np.ndarray,
    update: GaitUpdate,
    activity: str,
    stride: Optional[Stride],
    scale: float = 1.0,
) -> None:
    lines = [f"{activity}  {update.view or 'view ?'}"]
    if stride is not None:
        age = update.t - stride.t
        if age > PANEL_FRESH_S:
            lines.append(f"no step for {age:.1f} s")
        else:
            lines.append(f"step {stride.side}, {age:.1f} s ago")
            for metric in METRICS.values():
                if metric.overlay is not None and metric.name in stride.metrics:
                    short, fmt = metric.overlay
                    lines.append(f"{short}: {fmt.format(stride.metrics[metric.name])}")
    _draw_lines(canvas, lines, 0, 0, int(230 * scale), scale)


def draw_caption(canvas: np.ndarray, text: str, scale: float = 1.0) -> None:
    """`text` wrapped to the frame's width on a dark band along its bottom."""
    width = canvas.shape[1]
    size = 0.5 * scale
    lines: list[str] = []
    for word in text.split():
        joined = f"{lines[-1]} {word}" if lines else word
        fits = cv2.getTextSize(joined, cv2.FONT_HERSHEY_SIMPLEX, size, max(1, int(scale)))
        if lines and fits[0][0] <= width - int(16 * scale):
            lines[-1] = joined
        else:
            lines.append(word)
    height = int(20 * scale) * len(lines) + int(10 * scale)
    _draw_lines(canvas, lines, 0, canvas.shape[0] - height, width, scale)


def _draw_lines(
    canvas: np.ndarray, lines: Sequence[str], x: int, y: int, width: int, scale: float
) -> None:
    """White text lines on a darkened box whose top-left corner is (x, y)."""
    step = int(20 * scale)
    height = step * len(lines) + int(10 * scale)
    box = canvas[y : y + height, x : x + width]
    box[:] = (box * 0.4).astype(canvas.dtype)
    for i, text in enumerate(lines):
        cv2.putText(
            canvas,
            text,
            (x + int(8 * scale), y + step * (i + 1)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5 * scale,
            (255, 255, 255),
            max(1, int(scale)),
            cv2.LINE_AA,
        )
