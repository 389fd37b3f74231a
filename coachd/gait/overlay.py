"""Drawing for `coachd analyze --overlay`: skeleton, foot contacts and the latest metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from coachd.body import seen_mask, torso_length
from coachd.errors import UsageError
from coachd.messages import GaitUpdate, Landmark, Pose, Stride

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
SHOWN_METRICS = (
    ("cadence_spm", "cadence", "{:.0f} spm"),
    ("overstride_ratio", "overstride", "{:.2f} L"),
    ("shank_angle_deg", "shank", "{:+.0f} deg"),
    ("trunk_lean_deg", "trunk lean", "{:+.0f} deg"),
    ("foot_angle_deg", "foot angle", "{:+.0f} deg"),
    ("contact_time_ms", "contact", "{:.0f} ms"),
    ("duty_factor", "duty", "{:.2f}"),
    ("vertical_oscillation_ratio", "bounce", "{:.3f} L"),
    ("knee_lift_deg", "knee lift", "{:.0f} deg"),
    ("heel_recovery_ratio", "heel recovery", "{:.2f} L"),
    ("shoulder_tilt_p2p_deg", "shoulder tilt", "{:.1f} deg"),
    ("shoulder_sway_ratio", "shoulder sway", "{:.2f}"),
    ("shoulder_elevation_ratio", "shoulder elev.", "{:.2f}"),
    ("belt_speed_kmh", "belt", "{:.1f} km/h"),
)
CONTACT_MARK_S = 0.25


def _colour(index: int) -> tuple[int, int, int]:
    name = Landmark(index).name
    if name.startswith("LEFT"):
        return LEFT_COLOUR
    if name.startswith("RIGHT"):
        return RIGHT_COLOUR
    return CENTRE_COLOUR


@dataclass
class OverlayWriter:
    """Writes the analysed video: call `write` with each frame, pose and gait update."""

    path: Path
    fps: float
    blur_faces: bool = False
    _writer: Optional[cv2.VideoWriter] = None
    _latest: Optional[Stride] = None
    _contacts: list[tuple[float, str, tuple[int, int]]] = field(default_factory=list)

    def write(self, image: np.ndarray, t: float, pose: Optional[Pose], update: GaitUpdate) -> None:
        canvas = image.copy()
        if self._writer is None:
            height, width = canvas.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")  # type: ignore[attr-defined]
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (width, height))
            if not self._writer.isOpened():
                raise UsageError(f"--overlay {self.path}: cannot write a video there")
        scale = max(1.0, canvas.shape[0] / 720.0)
        if pose is not None and self.blur_faces:
            blur_face(canvas, pose)
        if pose is not None:
            draw_skeleton(canvas, pose, scale)
            for event in update.events:
                if event.kind == "contact":
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
        draw_panel(canvas, update, self._latest, scale)
        self._writer.write(canvas)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


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
    canvas: np.ndarray, update: GaitUpdate, stride: Optional[Stride], scale: float = 1.0
) -> None:
    lines = [f"{update.activity}  {update.view or 'view ?'}"]
    if stride is not None:
        lines.append(f"step {stride.side} @ {stride.t:.2f}s")
        for key, label, fmt in SHOWN_METRICS:
            if key in stride.metrics:
                lines.append(f"{label}: {fmt.format(stride.metrics[key])}")
    size = 0.5 * scale
    step = int(20 * scale)
    height = step * len(lines) + int(10 * scale)
    width = int(230 * scale)
    panel = canvas[0:height, 0:width]
    canvas[0:height, 0:width] = (panel * 0.4).astype(canvas.dtype)
    for i, text in enumerate(lines):
        cv2.putText(
            canvas,
            text,
            (int(8 * scale), step * (i + 1)),
            cv2.FONT_HERSHEY_SIMPLEX,
            size,
            (255, 255, 255),
            max(1, int(scale)),
            cv2.LINE_AA,
        )
