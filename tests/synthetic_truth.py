"""The synthetic runner's truth for tests: the oracle (coachd.bench.synthetic_truth, shared
with `coachd bench gait`) plus what only tests need, each frame's drawn joints and occlusion."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from coachd.bench.synthetic_truth import (
    CONTACT_EPS_M,
    ContactInstants,
    Skeletons,
    SyntheticTruth,
    contact_flags,
    measure,
    measure_skeletons,
    simulate_skeletons,
    simulate_truth,
)
from coachd.capture.synthetic import SyntheticSource
from coachd.capture.synthetic.kinematics import GaitModel
from coachd.capture.synthetic.params import SyntheticParams
from coachd.capture.synthetic.projection import camera_for_params
from coachd.messages import BODY_LANDMARKS, NUM_LANDMARKS

__all__ = [
    "CONTACT_EPS_M",
    "ContactInstants",
    "FrameTruth",
    "FrameTruths",
    "Skeletons",
    "SyntheticTruth",
    "contact_flags",
    "measure",
    "measure_skeletons",
    "occlusion",
    "simulate_skeletons",
    "simulate_truth",
]


@dataclass(frozen=True)
class FrameTruth:
    """What the synthetic runner drew in one frame, measured on its own 3-D skeleton."""

    joints_3d: np.ndarray  # (33, 3) metres, world frame, BlazePose order; NaN while away
    joints_2d: np.ndarray  # (33, 2) image pixels after projection
    in_frame: np.ndarray  # (33,) bool: projected inside the image
    in_contact: tuple[bool, bool]  # (left, right) foot on the belt


class FrameTruths:
    """Each frame's truth of a synthetic run, from the same parameters the source draws with."""

    def __init__(self, params: SyntheticParams) -> None:
        self.params = params
        self.model = GaitModel(params)
        self.camera = camera_for_params(params)

    def at(self, t: float) -> FrameTruth:
        """The truth at simulation time t (Frame.t of a source that is not realtime)."""
        if not self.params.runner_present(t):
            return FrameTruth(
                joints_3d=np.full((NUM_LANDMARKS, 3), np.nan),
                joints_2d=np.full((NUM_LANDMARKS, 2), np.nan),
                in_frame=np.zeros(NUM_LANDMARKS, dtype=bool),
                in_contact=(False, False),
            )
        joints = self.model.skeleton(t).joints
        uv, depth = self.camera.project(joints)
        return FrameTruth(
            joints_3d=joints,
            joints_2d=uv,
            in_frame=self.camera.inside(uv) & (depth > 0),
            in_contact=contact_flags(joints),
        )


def occlusion(source: SyntheticSource, t: float) -> float:
    """Share of the runner's in-frame body landmarks hidden behind the walker at t.

    The walker's outline is the convex hull of its projected joints widened by a limb's
    radius, so this errs towards "hidden"; 0 without a walker or when it is behind.
    """
    if source.walker is None or not source.params.runner_present(t):
        return 0.0
    walker = source.walker.skeleton(t)
    if walker is None:
        return 0.0
    truth = FrameTruths(source.params).at(t)
    camera = source.camera
    w_uv, w_depth = camera.project(walker.joints)
    _, r_depth = camera.project(truth.joints_3d)
    if float(np.median(w_depth)) >= float(np.median(r_depth)):
        return 0.0
    hull = cv2.convexHull(w_uv.astype(np.float32))
    margin = camera.focal * 0.035 * source.walker.model.body.height / float(np.median(w_depth))
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
