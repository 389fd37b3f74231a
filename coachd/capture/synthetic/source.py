"""SyntheticSource: the synthetic runner as a FrameSource (its truth is measured in tests/)."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Optional

import numpy as np

from coachd.capture import FrameSource
from coachd.capture.synthetic.kinematics import RUNNER_X, GaitModel, Skeleton, rot_z
from coachd.capture.synthetic.params import SyntheticParams, default_params, parse_spec
from coachd.capture.synthetic.projection import FLOOR_Z, Camera, camera_for_params
from coachd.capture.synthetic.qr_card import draw_qr_card
from coachd.capture.synthetic.render import Palette, PersonPainter, Scene
from coachd.messages import Frame

WALKER_PERIOD_S = 14.0
WALKER_FIRST_S = 2.0
WALKER_SPAN_M = 4.5  # walks from this far on one side of the runner to as far on the other


class Walker:
    """A second person who walks across the room now and then, behind or before the runner."""

    def __init__(self, params: SyntheticParams, camera: Camera) -> None:
        walk = dataclasses.replace(default_params("walk"), seed=params.seed + 1, fps=params.fps)
        self.model = GaitModel(walk)
        self.speed = self.model.speed
        self.painter = PersonPainter(
            self.model.body,
            Palette(
                shirt=(90, 150, 60),
                shorts=(110, 70, 40),
                skin=(120, 160, 205),
                hair=(30, 30, 30),
                shoes=(50, 50, 50),
                trousers=True,
            ),
            camera,
        )
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
        self.scene = Scene(self.camera, params.background, params.belt_speed_ms)
        self.painter = PersonPainter(
            self.model.body,
            Palette(params.shirt, params.shorts, params.skin, params.hair, params.shoes),
            self.camera,
        )
        self.walker = Walker(params, self.camera) if params.walker else None
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
        """The image (BGR) at simulation time t."""
        img = self.scene.image.copy()
        self.scene.draw_moving(img, t)
        parts = self.scene.near()
        if self.params.runner_present(t):
            parts.extend(self.painter.parts(self.model.skeleton(t)))
        if self.walker is not None:
            walker_sk = self.walker.skeleton(t)
            if walker_sk is not None:
                parts.extend(self.walker.painter.parts(walker_sk))
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
