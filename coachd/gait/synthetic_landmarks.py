"""Landmark streams straight from the synthetic runner's skeleton: no rendering, no pose model.

The gait stage's own geometry is checked against the synthetic truth with these (tests, the
figures in docs/metrics.md); the full image -> pose -> gait path is checked separately.
A pinhole camera looks at the runner from the parameters' view, distance and height.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from coachd.capture.synthetic.kinematics import RUNNER_X
from coachd.capture.synthetic.params import SyntheticParams, parse_spec
from coachd.capture.synthetic.truth import SyntheticTruth, simulate_truth
from coachd.gait.analyzer import GaitAnalyzer
from coachd.messages import GaitEvent, GaitUpdate, Pose, Stride, TrackedFrame, View
from coachd.settings import GaitSettings

# Focal length as a multiple of the image height (a typical webcam, ~55 degrees vertical).
FOCAL_PER_HEIGHT = 1.0
# Where the camera stands and which world direction is image-right, for each view
# (world: x the runner's forward, y the runner's left, z up).
_CAMERAS: dict[
    View, tuple[tuple[float, float], tuple[float, float, float], tuple[float, float, float]]
] = {
    "side-left": ((0.0, 1.0), (0.0, -1.0, 0.0), (-1.0, 0.0, 0.0)),
    "side-right": ((0.0, -1.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)),
    "front": ((1.0, 0.0), (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "rear": ((-1.0, 0.0), (1.0, 0.0, 0.0), (0.0, -1.0, 0.0)),
}


@dataclass(frozen=True)
class LandmarkRun:
    frames: list[TrackedFrame]
    truth: SyntheticTruth
    params: SyntheticParams


def project(joints: np.ndarray, params: SyntheticParams) -> np.ndarray:
    """World joints (..., 3) metres -> image pixels (..., 2) for the parameters' camera."""
    (ax, ay), forward, right = _CAMERAS[params.view]
    centre = np.array([RUNNER_X + ax * params.distance, ay * params.distance, params.camera_height])
    rel = np.asarray(joints, dtype=np.float64) - centre
    depth = rel @ np.array(forward)
    across = rel @ np.array(right)
    down = -rel[..., 2]
    focal = FOCAL_PER_HEIGHT * params.height
    u = params.width / 2.0 + focal * across / depth
    v = params.height / 2.0 + focal * down / depth
    return np.stack([u, v], axis=-1)


def landmark_run(
    spec: str,
    noise_px: float = 1.0,
    seed: int = 0,
    crop_below_y: Optional[float] = None,
) -> LandmarkRun:
    """TrackedFrames for a `synthetic:?...` spec (its `seconds` sets the length).

    `noise_px` adds Gaussian jitter to every landmark, like a pose model's; `crop_below_y`
    (a fraction of the image height) cuts the image there: landmarks below it are unseen.
    """
    params = parse_spec(spec)
    truth = simulate_truth(params)
    rng = np.random.default_rng(seed)
    frames: list[TrackedFrame] = []
    size = (params.width, params.height)
    for i, t in enumerate(truth.t):
        pose = None
        if truth.present[i]:
            xy = project(truth.joints[i], params) + rng.normal(0.0, noise_px, (33, 2))
            visibility = np.ones(33)
            inside = (
                (xy[:, 0] >= 0)
                & (xy[:, 0] < params.width)
                & (xy[:, 1] >= 0)
                & (xy[:, 1] < params.height)
            )
            if crop_below_y is not None:
                inside &= xy[:, 1] < crop_below_y * params.height
            visibility[~inside] = 0.05
            norm = np.zeros((33, 3))
            norm[:, 0] = xy[:, 0] / params.width
            norm[:, 1] = xy[:, 1] / params.height
            pose = Pose(size, xy, norm, visibility, np.ones(33), np.zeros((33, 3)))
        frames.append(TrackedFrame(seq=i, t=float(t), t_ready=float(t), pose=pose))
    return LandmarkRun(frames, truth, params)


@dataclass(frozen=True)
class GaitRecord:
    """Everything a GaitAnalyzer said over a stream."""

    updates: list[GaitUpdate]
    events: list[GaitEvent]
    strides: list[Stride]
    view: Optional[View]


def run_gait(frames: list[TrackedFrame], settings: GaitSettings, fps: float) -> GaitRecord:
    """Feed every frame to a fresh GaitAnalyzer and keep what it said."""
    analyzer = GaitAnalyzer(settings, fps)
    updates = [analyzer.update(frame) for frame in frames]
    events = [e for u in updates for e in u.events]
    strides = [s for u in updates for s in u.strides]
    return GaitRecord(updates, events, strides, analyzer.view)
