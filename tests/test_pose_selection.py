"""The right person: the runner is whoever stays in place and moves their legs on the belt.

Through the real pose model on the synthetic runner with someone walking across in full view
(`walker=1`) and someone standing partly in view (`bystander=`).
"""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_truth import FrameTruths
from test_pose_synthetic import on_runner, synthetic_frames, track

from coachd.capture.synthetic import SyntheticSource, parse_spec
from coachd.capture.synthetic.kinematics import GaitModel
from coachd.capture.synthetic.params import default_params
from coachd.messages import TrackedFrame
from coachd.pose.parallel import FrameParallelTracker, Layout
from coachd.pose.selection import SAMPLE_S, RunnerAnchor, motion_between
from coachd.settings import PoseSettings


def followed(spec: str, parallel: bool = False) -> tuple[list[TrackedFrame], list[bool]]:
    """Each frame's tracking (by the serial or the two-worker tracker) and whether it is on
    the runner."""
    frames = synthetic_frames(spec)
    if parallel:
        tracker = FrameParallelTracker(PoseSettings(), Layout(2, 1))
        results: list[TrackedFrame] = []
        try:
            for frame in frames:
                tracker.submit(frame, results.append)
            assert tracker.drain(timeout=300.0)
        finally:
            tracker.close()
    else:
        results = track(frames)
    truths = FrameTruths(parse_spec(spec))
    return results, [r.pose is not None and on_runner(r, truths) for r in results]


def first_of_the_rest(results: list[TrackedFrame], on: list[bool]) -> float:
    """When the tracker took the runner for good (inf: it never did)."""
    if not on[-1]:
        return float("inf")
    last_off = max((i for i, ok in enumerate(on) if not ok), default=-1)
    return results[last_off + 1].t


def test_a_person_glimpsed_once_anchors_nobody() -> None:
    anchor = RunnerAnchor()
    anchor.update((60.0, 200.0), 80.0, t=2.47)  # a bystander found in one frame
    assert anchor.fits((320.0, 240.0), 110.0, t=3.0)  # the runner stepping on is not refused
    anchor.update((320.0, 240.0), 110.0, t=3.0)
    for step in range(1, 20):
        anchor.update((320.0, 240.0), 110.0, t=3.0 + step / 30.0)
    assert not anchor.fits((60.0, 200.0), 80.0, t=3.7)  # followed long enough: now it holds


def test_legs_moving_in_place_tell_the_runner_from_standing_and_passing_people() -> None:
    source = SyntheticSource.from_spec("synthetic:?walker=1", False)
    stander = GaitModel(default_params("stand"))
    camera = source.camera
    assert source.walker is not None

    def motion(skeleton_at: object, t: float) -> bool:
        before = camera.project(skeleton_at(t).joints)[0]  # type: ignore[operator]
        after = camera.project(skeleton_at(t + SAMPLE_S).joints)[0]  # type: ignore[operator]
        body = 2.0 * float(np.linalg.norm(before[11:13].mean(axis=0) - before[23:25].mean(axis=0)))
        return motion_between(before, after, SAMPLE_S, body).on_the_belt

    times = np.arange(3.0, 5.0, 0.13)
    assert all(motion(source.model.skeleton, float(t)) for t in times)
    assert not any(motion(stander.skeleton, float(t)) for t in times)
    assert not any(motion(source.walker.skeleton, float(t)) for t in times)


def test_the_runner_stepping_on_wins_over_a_bystander_seen_first() -> None:
    results, on = followed("synthetic:?bystander=left&absent=0-3&seconds=5.5")
    assert first_of_the_rest(results, on) <= 4.0


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "two workers"])
def test_the_runner_stepping_on_wins_over_someone_walking_across(parallel: bool) -> None:
    # The walker crosses from 2 s and is followed while nobody else is there.
    results, on = followed("synthetic:?walker=1&absent=0-4&seconds=7", parallel)
    assert first_of_the_rest(results, on) <= 5.5


def test_the_runner_is_kept_with_a_walker_and_a_bystander_in_view() -> None:
    results, on = followed("synthetic:?walker=1&bystander=right&view=side-right&seconds=8")
    assert sum(on) >= 0.97 * len(results)
    off = [r.seq for r, ok in zip(results, on) if r.pose is not None and not ok]
    assert not off
