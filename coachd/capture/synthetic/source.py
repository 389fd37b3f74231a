"""SyntheticSource: the synthetic runner as a FrameSource (its truth is measured in tests/)."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Optional

import cv2
import numpy as np

from coachd.capture import FrameSource
from coachd.capture.synthetic.kinematics import RUNNER_X, GaitModel, Skeleton, rot_z
from coachd.capture.synthetic.params import Gait, SyntheticParams, default_params, parse_spec
from coachd.capture.synthetic.projection import FLOOR_Z, Camera, camera_for_params
from coachd.capture.synthetic.qr_card import draw_qr_card
from coachd.capture.synthetic.render import Palette, PersonPainter, Scene
from coachd.messages import Frame

WALKER_PERIOD_S = 14.0
WALKER_FIRST_S = 2.0
WALKER_SPAN_M = 4.5  # walks from this far on one side of the runner to as far on the other
BYSTANDER_NEARER_M = 0.8  # the bystander stands this much nearer the camera than the runner
SHUTTER_SAMPLES = 4  # instants averaged over the exposure for motion blur
NOISE_FIELDS = 7  # sensor noise fields, cycled through frame by frame
WALKER_PALETTE = Palette(
    shirt=(90, 150, 60), shorts=(110, 70, 40), skin=(120, 160, 205), hair=(30, 30, 30),
    shoes=(50, 50, 50), legwear="tights",
)  # fmt: skip
BYSTANDER_PALETTE = Palette(
    shirt=(50, 50, 160), shorts=(70, 60, 50), skin=(100, 140, 190), hair=(40, 40, 40),
    shoes=(40, 40, 40), legwear="tights",
)  # fmt: skip


def _other_person(
    gait: Gait, seed: int, fps: float, palette: Palette, camera: Camera
) -> tuple[GaitModel, PersonPainter]:
    """The motion model and painter of someone besides the runner (walker, bystander)."""
    model = GaitModel(dataclasses.replace(default_params(gait), seed=seed, fps=fps))
    return model, PersonPainter(model.body, palette, camera)


class Walker:
    """A second person who walks across the room now and then, behind or before the runner."""

    def __init__(self, params: SyntheticParams, camera: Camera) -> None:
        self.model, self.painter = _other_person(
            "walk", params.seed + 1, params.fps, WALKER_PALETTE, camera
        )
        self.speed = self.model.speed
        self.camera = camera

    def skeleton(self, t: float) -> Optional[Skeleton]:
        since = t - WALKER_FIRST_S
        if since < 0:
            return None
        n = int(since // WALKER_PERIOD_S)
        local_t = since - n * WALKER_PERIOD_S
        travel = self.speed * local_t
        if travel > 2.0 * WALKER_SPAN_M:
            return None
        view_dir = self.camera.viewing_direction
        across = np.array([-view_dir[1], view_dir[0], 0.0])  # horizontal, across the image
        across /= np.linalg.norm(across)
        direction = across if n % 2 == 0 else -across
        depth = 1.9 if n % 2 == 0 else -1.0  # behind the treadmill, then in front of it
        flat_view = np.array([view_dir[0], view_dir[1], 0.0])
        flat_view /= np.linalg.norm(flat_view)
        start = (
            np.array([RUNNER_X, 0.0, FLOOR_Z])
            + flat_view * depth
            - direction * WALKER_SPAN_M
            + direction * travel
        )
        yaw = math.atan2(direction[1], direction[0])
        pose = self.model.skeleton(local_t)
        # The model walks on a belt: take its belt position out so its feet stay planted.
        rot = rot_z(yaw)
        return pose.moved(rot, start - rot @ np.array([RUNNER_X, 0.0, 0.0]))


class Bystander:
    """A person standing still at the image's left or right edge, about half in view."""

    def __init__(self, params: SyntheticParams, camera: Camera) -> None:
        palette = dataclasses.replace(BYSTANDER_PALETTE, style=params.style)
        self.model, self.painter = _other_person(
            "stand", params.seed + 2, params.fps, palette, camera
        )
        view = camera.viewing_direction
        flat_view = np.array([view[0], view[1], 0.0]) / math.hypot(view[0], view[1])
        right = np.array([camera.rotation[0][0], camera.rotation[0][1], 0.0])
        right /= np.linalg.norm(right)
        runner = np.array([RUNNER_X, 0.0, FLOOR_Z])
        depth = float(np.dot(runner - camera.position, flat_view)) - BYSTANDER_NEARER_M
        half_view_m = 0.5 * camera.width / camera.focal * depth
        sign = -1.0 if params.bystander == "left" else 1.0
        self.place = runner - flat_view * BYSTANDER_NEARER_M + right * sign * half_view_m
        facing = -flat_view  # towards the camera
        self.rotation = rot_z(math.atan2(facing[1], facing[0]))

    def skeleton(self, t: float) -> Skeleton:
        pose = self.model.skeleton(t)
        return pose.moved(self.rotation, self.place - self.rotation @ np.array([RUNNER_X, 0, 0]))


class SyntheticSource(FrameSource):
    """A parametric runner on a treadmill, drawn through a pinhole camera."""

    name = "synthetic"
    live = False

    def __init__(self, params: SyntheticParams, realtime: bool = False) -> None:
        self.params = params
        self.realtime = realtime
        self.finite = params.seconds is not None
        self.nominal_fps = params.fps
        self.frame_count: Optional[int] = (
            None if params.seconds is None else max(1, round(params.seconds * params.fps))
        )
        self.model = GaitModel(params)
        self.camera = camera_for_params(params)
        self.scene = Scene(
            self.camera,
            params.background,
            params.belt_speed_ms,
            belt=params.belt,
            room=params.room,
            occluder=params.occluder,
            seed=params.seed if params.vary is None else params.vary,
        )
        self.painter = PersonPainter(
            self.model.body,
            Palette(
                params.shirt,
                params.shorts,
                params.skin,
                params.hair,
                params.shoes,
                legwear=params.legwear,
                footwear=params.footwear,
                hair_style=params.hair_style,
                style=params.style,
                build=params.build,
            ),
            self.camera,
        )
        self.walker = Walker(params, self.camera) if params.walker else None
        self.bystander = Bystander(params, self.camera) if params.bystander != "none" else None
        self._noise: Optional[list[tuple[np.ndarray, np.ndarray]]] = None
        self._seq = 0
        self._started: Optional[float] = None

    @classmethod
    def from_spec(cls, spec: str, realtime: bool = False) -> SyntheticSource:
        return cls(parse_spec(spec), realtime)

    def fix_after(self, delay_s: float) -> None:
        """The runner's faults go `delay_s` after the newest frame (a demo runner who was
        told); an earlier `fix_at` stands. Safe to call from another thread."""
        fix_at = self._seq / self.params.fps + delay_s
        if self.params.fix_at is None or fix_at < self.params.fix_at:
            self.params = dataclasses.replace(self.params, fix_at=fix_at)
            self.model.params = self.params

    # -- frames ---------------------------------------------------------------------------
    def render(self, t: float) -> np.ndarray:
        """The image (BGR) at simulation time t, as the camera delivers it."""
        p = self.params
        shutter = min(p.shutter, 0.9 / p.fps)
        if shutter > 0.0:
            offsets = (np.arange(SHUTTER_SAMPLES) / (SHUTTER_SAMPLES - 1) - 0.5) * shutter
            total = np.zeros(self.scene.image.shape, dtype=np.uint16)
            for offset in offsets:
                total += self.draw(t + float(offset))
            img = ((total + SHUTTER_SAMPLES // 2) // SHUTTER_SAMPLES).astype(np.uint8)
        else:
            img = self.draw(t)
        return self._sensor(img, t)

    def _sensor(self, img: np.ndarray, t: float) -> np.ndarray:
        """Exposure, sensor noise and JPEG compression, each only when asked for."""
        p = self.params
        if p.light != 1.0:
            img = cv2.convertScaleAbs(img, alpha=p.light)
        if p.noise > 0.0:
            # A few noise fields drawn once, one chosen per frame: cheap, and still grain.
            if self._noise is None:
                rng = np.random.default_rng([p.seed, 31])
                fields = np.rint(rng.standard_normal((NOISE_FIELDS, *img.shape)) * p.noise)
                self._noise = [
                    (np.clip(f, 0, 255).astype(np.uint8), np.clip(-f, 0, 255).astype(np.uint8))
                    for f in fields
                ]
            brighter, darker = self._noise[round(t * 1e6) % NOISE_FIELDS]
            img = cv2.subtract(cv2.add(img, brighter), darker)
        if p.jpeg:
            ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, p.jpeg])
            if ok:
                img = cv2.imdecode(data, cv2.IMREAD_COLOR)
        return img

    def draw(self, t: float) -> np.ndarray:
        """The scene at the instant t, before the camera's sensor."""
        img = self.scene.image.copy()
        self.scene.draw_moving(img, t)
        parts = self.scene.near()
        if self.params.runner_present(t):
            parts.extend(self.painter.parts(self.model.skeleton(t)))
        if self.walker is not None:
            walker_sk = self.walker.skeleton(t)
            if walker_sk is not None:
                parts.extend(self.walker.painter.parts(walker_sk))
        if self.bystander is not None:
            parts.extend(self.bystander.painter.parts(self.bystander.skeleton(t)))
        parts.sort(key=lambda part: -part[0])
        for _, draw in parts:
            draw(img)
        if self.params.qr and t < self.params.qr_seconds:
            draw_qr_card(img, self.params.qr)
        return img

    def read(self) -> Optional[Frame]:
        seq = self._seq
        if self.frame_count is not None and seq >= self.frame_count:
            return None
        t_sim = seq / self.params.fps
        image = self.render(t_sim)
        if self.realtime:
            if self._started is None:
                self._started = time.monotonic()
            due = self._started + t_sim
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t = time.monotonic()
        else:
            t = t_sim
        self._seq += 1
        return Frame(seq=seq, t=t, image=image)
