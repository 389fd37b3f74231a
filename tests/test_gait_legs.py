"""Leg identity, plausibility and timing at any frame rate, on landmark streams from the
synthetic runner's skeleton (no pose model: the labels' truth is known)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from landmark_streams import LandmarkRun, landmark_run, run_gait

from coachd.body import LEFT_LEG, RIGHT_LEG
from coachd.gait import GaitAnalyzer
from coachd.gait.legs import LegTracker
from coachd.gait.plausible import step_fault
from coachd.messages import GaitEvent, TrackedFrame
from coachd.settings import GaitSettings

LEFT, RIGHT = list(LEFT_LEG), list(RIGHT_LEG)
SPEC = "synthetic:?view=side-left&seconds=10&fps={fps}"


def swap_labels(frame: TrackedFrame) -> TrackedFrame:
    """The frame with the model's left and right leg labels the wrong way round."""
    assert frame.pose is not None
    xy = np.array(frame.pose.xy)
    xy[LEFT + RIGHT] = xy[RIGHT + LEFT]
    return dataclasses.replace(frame, pose=dataclasses.replace(frame.pose, xy=xy))


def found_share(
    found: list[GaitEvent], truth: list[GaitEvent], tolerance_s: float, from_s: float = 1.0
) -> float:
    """The share of the truth's landings from `from_s` on found within `tolerance_s`, on the
    right foot.  Live, a foot's contacts are found once 0.8 s of its heights show where it
    stands; offline also those before (a foot already down in the first frames shows no
    landing: 0.1 s)."""
    contacts = [e for e in found if e.kind == "contact"]
    landings = [e for e in truth if e.kind == "contact" and e.t >= from_s]
    hits = 0
    for event in landings:
        hits += any(abs(e.t - event.t) <= tolerance_s and e.side == event.side for e in contacts)
    return hits / len(landings)


@pytest.fixture(scope="module")
def run30() -> LandmarkRun:
    return landmark_run(SPEC.format(fps=30), noise_px=1.0)


def test_short_label_swaps_are_repaired_and_counted(run30: LandmarkRun) -> None:
    # Every 0.7 s the labels flip for 4 frames (133 ms), as a pose model's do mid-stride.
    frames = [
        swap_labels(f) if i % 21 in (5, 6, 7, 8) and f.pose is not None else f
        for i, f in enumerate(run30.frames)
    ]
    tracker = LegTracker(30.0)
    wrong = 0
    for frame, clean in zip(frames, run30.frames):
        assert frame.pose is not None and clean.pose is not None
        xy = np.array(frame.pose.xy)
        legs = tracker.assign(frame.t, xy, 150.0)
        if legs.swapped:
            xy[LEFT + RIGHT] = xy[RIGHT + LEFT]
        wrong += not np.allclose(xy[LEFT], clean.pose.xy[LEFT])
    stretches = len(range(5, len(frames), 21))
    assert wrong <= 0.05 * len(frames)
    assert stretches - 2 <= tracker.repairs <= stretches + 2
    record = run_gait(frames, GaitSettings(), 30.0)
    assert record.updates[-1].label_repairs == tracker.repairs
    assert found_share(record.events, run30.truth.events, 1.5 / 30) >= 0.9


def test_labels_the_wrong_way_round_for_good_are_given_back_to_the_model(
    run30: LandmarkRun,
) -> None:
    # From 3 s on the model names the legs the other way round and keeps to it: the tracks
    # follow the model again within a second, rather than go against it to the end.
    tracker = LegTracker(30.0)
    swapped_late = []
    for frame in run30.frames:
        flipped = swap_labels(frame) if frame.t >= 3.0 else frame
        assert flipped.pose is not None
        legs = tracker.assign(frame.t, np.array(flipped.pose.xy), 150.0)
        if frame.t >= 4.0:
            swapped_late.append(legs.swapped)
    assert not any(swapped_late)


@pytest.mark.parametrize("fps", [24, 60, 120])
def test_contacts_are_found_alike_at_any_frame_rate(fps: int) -> None:
    run = landmark_run(SPEC.format(fps=fps), noise_px=1.0)
    record = run_gait(run.frames, GaitSettings(), float(fps))
    # Within a frame and a half, or 40 ms at high rates: the holds are in seconds, and the
    # frames just before a touchdown lie within the landmarks' noise of the belt.
    assert found_share(record.events, run.truth.events, max(1.5 / fps, 0.04)) >= 0.9
    # Steps are measured from the fourth live contact on (about 1.3 s of 10).
    assert len(record.strides) >= 0.75 * len(run.truth.steps)


@pytest.mark.parametrize("dropped", [0.25, 0.5])
def test_frames_dropped_by_a_busy_machine_keep_the_timing(
    run30: LandmarkRun, dropped: float
) -> None:
    rng = np.random.default_rng(1)
    kept = [f for f in run30.frames if rng.random() >= dropped]
    record = run_gait(kept, GaitSettings(), 30.0)
    # Within a frame and a half of the rate the frames came at.
    assert found_share(record.events, run30.truth.events, 1.5 / (30 * (1 - dropped))) >= 0.85
    cadence = [s.metrics["cadence_spm"] for s in record.strides]
    assert cadence and abs(float(np.median(cadence)) - 170.0) <= 2.0


def test_contacts_in_the_first_second_are_found_offline(run30: LandmarkRun) -> None:
    early = [e for e in run30.truth.events if e.kind == "contact" and 0.1 <= e.t <= 1.0]
    assert early
    live = run_gait(run30.frames, GaitSettings(), 30.0)
    assert all(e.t_detected - e.t <= 0.15 for e in live.events)
    offline = GaitAnalyzer(GaitSettings(), 30.0, warm_up_events=True)
    found = [e for f in run30.frames for e in offline.update(f).events]
    assert found_share(found, early, 1.5 / 30, from_s=0.1) == 1.0
    assert found_share(found, run30.truth.events, 1.5 / 30, from_s=0.1) >= 0.9


@pytest.mark.parametrize(
    ("step_s", "contact_s", "stride_s", "fault"),
    [
        (0.35, 0.24, 0.7, None),
        (0.15, 0.1, 0.3, "step time"),
        (1.4, 0.3, 2.8, "step time"),
        (0.35, 0.06, 0.7, "contact time"),
        (0.35, 0.8, 0.7, "contact time"),
        (0.9, 0.11, 1.9, "duty factor"),
    ],
)
def test_a_step_no_runner_can_take_fails(
    step_s: float, contact_s: float, stride_s: float, fault: str
) -> None:
    assert step_fault(step_s, None, contact_s, stride_s) == fault
