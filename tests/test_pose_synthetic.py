"""The pose stage on the synthetic runner: every view, someone walking past, stepping off."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_truth import FrameTruths

from coachd.capture.open import open_source
from coachd.capture.synthetic import parse_spec
from coachd.messages import VIEWS, Frame, Landmark, TrackedFrame
from coachd.pose import create_tracker
from coachd.settings import CameraSettings, PoseSettings

HIPS = [Landmark.LEFT_HIP, Landmark.RIGHT_HIP]
SHOULDERS = [Landmark.LEFT_SHOULDER, Landmark.RIGHT_SHOULDER]


def synthetic_frames(spec: str) -> list[Frame]:
    with open_source(spec, CameraSettings(), realtime=False) as source:
        return list(source)


def track(frames: list[Frame], backend: str = "litert") -> list[TrackedFrame]:
    tracker = create_tracker(PoseSettings(), backend)
    try:
        return [tracker.track(frame) for frame in frames]
    finally:
        tracker.close()


def on_runner(result: TrackedFrame, truths: FrameTruths) -> bool:
    """The tracked hips lie within half a torso of the drawn runner's hips."""
    assert result.pose is not None
    truth = truths.at(result.t).joints_2d
    hips = truth[HIPS].mean(axis=0)
    torso = float(np.linalg.norm(truth[SHOULDERS].mean(axis=0) - hips))
    return float(np.linalg.norm(result.pose.xy[HIPS].mean(axis=0) - hips)) < 0.5 * torso


@pytest.mark.parametrize("view", VIEWS)
def test_runner_found_in_every_view(view: str) -> None:
    spec = f"synthetic:?view={view}&seconds=2"
    results = track(synthetic_frames(spec))
    truths = FrameTruths(parse_spec(spec))
    found = [r for r in results if r.pose is not None]
    assert len(found) >= 0.99 * len(results)
    assert all(on_runner(r, truths) for r in found)


def test_stepping_off_and_back_on() -> None:
    spec = "synthetic:?absent=1-2&seconds=3.5"
    frames = synthetic_frames(spec)
    truths = FrameTruths(parse_spec(spec))
    results = track(frames)
    present = [r.pose is not None for r in results]
    gone = [i for i, f in enumerate(frames) if 1.0 <= f.t < 2.0]
    back = [i for i, f in enumerate(frames) if f.t >= 2.0]
    assert all(present[: gone[0]])
    lost_at = gone[0] + present[gone[0] :].index(False)
    assert frames[lost_at].t - frames[gone[0]].t <= 0.5
    found_at = back[0] + present[back[0] :].index(True)
    assert frames[found_at].t - frames[back[0]].t <= 1.0
    assert all(present[found_at:])
    assert all(on_runner(r, truths) for r in results[found_at:])


@pytest.mark.slow
def test_walker_passing_behind_and_in_front_never_taken_for_the_runner() -> None:
    # The walker crosses behind the treadmill from 2 s and in front of it from 16 s.
    spec = "synthetic:?walker=1&seconds=24"
    results = track(synthetic_frames(spec))
    truths = FrameTruths(parse_spec(spec))
    found = [r for r in results if r.pose is not None]
    assert len(found) >= 0.97 * len(results)
    off = [r.seq for r in found if not on_runner(r, truths)]
    assert len(off) <= 0.01 * len(results), off
