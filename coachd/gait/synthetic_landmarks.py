"""Landmark streams straight from the synthetic runner's skeleton: no rendering, no pose model.

The gait stage's own geometry is checked against the synthetic truth with these (tests, the
figures in docs/metrics.md); the full image -> pose -> gait path is checked separately.
The landmarks are the skeleton's joints through the synthetic source's own camera.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from coachd.capture.synthetic.params import SyntheticParams, parse_spec
from coachd.capture.synthetic.projection import camera_for_params
from coachd.capture.synthetic.truth import SyntheticTruth, simulate_truth
from coachd.gait.analyzer import GaitAnalyzer
from coachd.messages import GaitEvent, GaitUpdate, Pose, Stride, TrackedFrame, View
from coachd.settings import GaitSettings


@dataclass(frozen=True)
class LandmarkRun:
    frames: list[TrackedFrame]
    truth: SyntheticTruth
    params: SyntheticParams


def project(joints: np.ndarray, params: SyntheticParams) -> np.ndarray:
    """World joints (..., 3) metres -> image pixels (..., 2): the synthetic source's camera."""
    camera = camera_for_params(params)
    uv, _ = camera.project(np.asarray(joints, dtype=np.float64))
    return np.asarray(uv)


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
