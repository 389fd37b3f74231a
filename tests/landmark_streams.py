"""Landmark streams straight from the synthetic runner's skeleton: no rendering, no pose model.

The gait stage's own geometry is checked against the synthetic truth with these (tests, the
figures in docs/metrics.md); the full image -> pose -> gait path is checked separately.
The landmarks are the skeleton's joints through the synthetic source's own camera.  A run's
truth (contacts found between frames by bisection, events, steps) is measured only when asked
for: the long coaching runs read only the frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Optional

import numpy as np
from synthetic_truth import Skeletons, SyntheticTruth, measure_skeletons, simulate_skeletons

from coachd.capture.synthetic.params import SyntheticParams, parse_spec
from coachd.capture.synthetic.projection import camera_for_params
from coachd.gait.analyzer import GaitAnalyzer
from coachd.messages import GaitEvent, GaitUpdate, Pose, Stride, TrackedFrame, View
from coachd.settings import GaitSettings


class LandmarkRun:
    """A run's landmark frames; its truth is measured on first use."""

    def __init__(self, frames: list[TrackedFrame], skeletons: Skeletons) -> None:
        self.frames = frames
        self.skeletons = skeletons
        self.params = skeletons.params

    @cached_property
    def truth(self) -> SyntheticTruth:
        return measure_skeletons(self.skeletons)


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
    skeletons = simulate_skeletons(params)
    rng = np.random.default_rng(seed)
    frames: list[TrackedFrame] = []
    size = (params.width, params.height)
    for i, t in enumerate(skeletons.t):
        pose = None
        if skeletons.present[i]:
            xy = project(skeletons.joints[i], params) + rng.normal(0.0, noise_px, (33, 2))
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
    return LandmarkRun(frames, skeletons)


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
