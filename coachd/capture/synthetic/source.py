"""SyntheticSource: the synthetic runner as a FrameSource, each Frame carrying its truth."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Optional

import cv2
import numpy as np

from coachd.capture import FrameSource
from coachd.capture.synthetic.kinematics import RUNNER_X, GaitModel, Skeleton, rot_z
from coachd.capture.synthetic.params import SyntheticParams, default_params, parse_spec
from coachd.capture.synthetic.projection import FLOOR_Z, Camera, camera_for_params
from coachd.capture.synthetic.render import Palette, PersonPainter, Scene
from coachd.capture.synthetic.truth import (
    SyntheticTruth,
    contact_flags,
    runner_present,
    simulate_truth,
)
from coachd.messages import BODY_LANDMARKS, NUM_LANDMARKS, Frame, FrameTruth, GaitEvent, Stride

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
    """A parametric runner on a treadmill, drawn through a pinhole camera, with truth."""

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
        self._truth: Optional[SyntheticTruth] = None

    @classmethod
    def from_spec(cls, spec: str, realtime: bool = False) -> SyntheticSource:
        return cls(parse_spec(spec), realtime)

    # -- frames ---------------------------------------------------------------------------
    def frame_truth(self, t: float) -> tuple[FrameTruth, Optional[Skeleton]]:
        """The runner's truth at t and the skeleton to draw (None while away)."""
        if not runner_present(self.params, t):
            nan3 = np.full((NUM_LANDMARKS, 3), np.nan)
            return (
                FrameTruth(
                    t_sim=t,
                    joints_3d=nan3,
                    joints_2d=np.full((NUM_LANDMARKS, 2), np.nan),
                    in_frame=np.zeros(NUM_LANDMARKS, dtype=bool),
                    in_contact=(False, False),
                    view=self.params.view,
                ),
                None,
            )
        sk = self.model.skeleton(t)
        uv, depth = self.camera.project(sk.joints)
        truth = FrameTruth(
            t_sim=t,
            joints_3d=sk.joints,
            joints_2d=uv,
            in_frame=self.camera.inside(uv) & (depth > 0),
            in_contact=contact_flags(sk.joints),
            view=self.params.view,
        )
        return truth, sk

    def render(self, t: float) -> tuple[np.ndarray, FrameTruth]:
        """The image (BGR) and truth at simulation time t."""
        truth, sk = self.frame_truth(t)
        img = self.scene.image.copy()
        self.scene.draw_moving(img, t)
        parts = self.scene.near()
        if sk is not None:
            parts.extend(self.painter.parts(sk))
        if self.walker is not None:
            walker_sk = self.walker.skeleton(t)
            if walker_sk is not None:
                parts.extend(self.walker.painter.parts(walker_sk))
        parts.sort(key=lambda part: -part[0])
        for _, draw in parts:
            draw(img)
        return img, truth

    def read(self) -> Optional[Frame]:
        seq = self._seq
        if self.frame_count is not None and seq >= self.frame_count:
            return None
        t_sim = seq / self.params.fps
        image, truth = self.render(t_sim)
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
        return Frame(seq=seq, t=t, image=image, truth=truth)

    def occlusion(self, t: float) -> float:
        """Share of the runner's in-frame body landmarks hidden behind the walker at t.

        The walker's outline is the convex hull of its projected joints widened by a limb's
        radius, so this errs towards "hidden"; 0 without a walker or when it is behind.
        """
        if self.walker is None:
            return 0.0
        walker = self.walker.skeleton(t)
        truth, runner = self.frame_truth(t)
        if walker is None or runner is None:
            return 0.0
        w_uv, w_depth = self.camera.project(walker.joints)
        _, r_depth = self.camera.project(runner.joints)
        if float(np.median(w_depth)) >= float(np.median(r_depth)):
            return 0.0
        hull = cv2.convexHull(w_uv.astype(np.float32))
        margin = (
            self.camera.focal * 0.035 * self.walker.model.body.height / float(np.median(w_depth))
        )
        body = [i for i in BODY_LANDMARKS if truth.in_frame[i]]
        if not body:
            return 0.0
        hidden = sum(
            cv2.pointPolygonTest(
                hull, (float(truth.joints_2d[i, 0]), float(truth.joints_2d[i, 1])), True
            )
            > -margin
            for i in body
        )
        return hidden / len(body)

    # -- truth of the whole run -----------------------------------------------------------
    def truth(self, seconds: Optional[float] = None) -> SyntheticTruth:
        """The run's truth (an endless run needs `seconds`)."""
        if seconds is not None:
            return simulate_truth(self.params, seconds)
        if self._truth is None:
            self._truth = simulate_truth(self.params)
        return self._truth

    def truth_events(self, seconds: Optional[float] = None) -> list[GaitEvent]:
        """Every contact and toe-off, times in simulation seconds (Frame.t when realtime=False)."""
        return self.truth(seconds).events

    def truth_steps(self, seconds: Optional[float] = None) -> list[Stride]:
        """Per-step metrics measured on the drawn skeleton (metrics.md definitions)."""
        return self.truth(seconds).steps
