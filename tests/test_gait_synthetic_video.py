"""The whole path on the synthetic runner's video: rendered frames -> pose model -> gait,
against the synthetic truth measured on the drawn skeleton.

The gait issue's accuracy targets, each checked per clip: cadence within 1 spm; initial
contacts within one frame (median), and contact times too; trunk lean within 3 deg;
overstride ratio within 0.05; shank angle within 4 deg; foot strike class right in >= 90% of
steps; shoulder tilt telling a runner with 8 deg of sway from one with none on every stride.
At-contact metrics and contact times come from the near leg only (the gait stage leaves the
far leg's out).  The sweep over views and parameters is slow; a short version on a few short
clips is not.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from landmark_streams import GaitRecord, run_gait
from synthetic_truth import simulate_truth

from coachd.capture.synthetic import SyntheticSource, parse_spec
from coachd.catalog import METRICS
from coachd.gait import foot_strike
from coachd.messages import GaitEvent, Stride
from coachd.pose.tracker import create_tracker
from coachd.settings import GaitSettings, Settings

FRAME_S = 1.0 / 30.0


def truth_cadence(events: list[GaitEvent]) -> float:
    contacts = sorted(e.t for e in events if e.kind == "contact")
    return 60.0 * (len(contacts) - 1) / (contacts[-1] - contacts[0])


def test_analyze_a_synthetic_run(tmp_path: Path) -> None:
    spec = "synthetic:?view=side-right&cadence=170&seconds=8"
    out = tmp_path / "run.json"
    result = subprocess.run(
        [sys.executable, "-m", "coachd", "analyze", spec, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["source"] == spec and data["frames"] == 240 and data["fps"] == 30.0
    assert data["view"] == "side-right"
    assert len(data["strides"]) >= 8
    truth = simulate_truth(parse_spec(spec)).events
    assert abs(data["summary"]["cadence_spm"] - truth_cadence(truth)) < 1.0
    assert all(
        set(s) - {"t", "side", "duration_s", "confidence", "foot_strike"} <= set(METRICS)
        for s in data["strides"]
    )


@functools.lru_cache(maxsize=12)
def analyse_video(spec: str) -> tuple[GaitRecord, list[GaitEvent], list[Stride]]:
    """Render, track with the default pose settings, run the gait stage (cached per spec:
    several targets are checked on one clip)."""
    source = SyntheticSource.from_spec(spec, realtime=False)
    tracker = create_tracker(Settings().pose)
    try:
        frames = [tracker.track(frame) for frame in source]
    finally:
        tracker.close()
    record = run_gait(frames, GaitSettings(runner_height_cm=175.0), source.nominal_fps)
    truth = simulate_truth(source.params)
    return record, truth.events, truth.steps


def matched(record: GaitRecord, truth_steps: list[Stride], key: str) -> list[tuple[float, float]]:
    """(ours, truth) for every step of ours that a truth step of the same foot matches within
    one frame."""
    pairs = []
    for ours in record.strides:
        near = [
            t for t in truth_steps if t.side == ours.side and abs(t.t - ours.t) <= FRAME_S + 1e-6
        ]
        if near and key in ours.metrics and key in near[0].metrics:
            pairs.append((ours.metrics[key], near[0].metrics[key]))
    return pairs


def median_error(record: GaitRecord, truth_steps: list[Stride], key: str) -> float:
    pairs = matched(record, truth_steps, key)
    assert len(pairs) >= 4, f"{key}: only {len(pairs)} steps matched the truth"
    ours, truth = zip(*pairs)
    return float(np.median(ours) - np.median(truth))


def contact_errors_frames(record: GaitRecord, events: list[GaitEvent]) -> list[float]:
    errors = []
    for event in (e for e in record.events if e.kind == "contact"):
        same = [e.t for e in events if e.kind == "contact" and e.side == event.side]
        errors.append(min(abs(t - event.t) for t in same) / FRAME_S)
    return errors


def check_target(spec: str, target: str) -> None:
    record, events, steps = analyse_video(spec)
    if target == "cadence":
        ours = np.median([s.metrics["cadence_spm"] for s in record.strides])
        assert abs(ours - truth_cadence(events)) <= 1.0
    elif target == "contacts":
        errors = contact_errors_frames(record, events)
        assert len(errors) >= 0.8 * sum(e.kind == "contact" for e in events)
        assert np.median(errors) <= 1.0 + 1e-6
    elif target == "contact_time":
        # Near foot only: the far foot's contacts are not timed for this (gait.metrics).
        assert abs(median_error(record, steps, "contact_time_ms")) <= 1000.0 * FRAME_S
        assert abs(median_error(record, steps, "duty_factor")) <= 0.05
    elif target == "trunk_lean":
        assert abs(median_error(record, steps, "trunk_lean_deg")) <= 3.0
    elif target == "overstride":
        assert abs(median_error(record, steps, "overstride_ratio")) <= 0.05
    elif target == "shank":
        assert abs(median_error(record, steps, "shank_angle_deg")) <= 4.0
    elif target == "foot_strike":
        pairs = matched(record, steps, "foot_angle_deg")
        assert len(pairs) >= 4
        right = [foot_strike(ours) == foot_strike(truth) for ours, truth in pairs]
        assert np.mean(right) >= 0.9, f"{np.mean(right):.0%} of {len(right)} steps"
    else:
        raise AssertionError(f"unknown target {target}")


SIDE_TARGETS = (
    "cadence",
    "contacts",
    "contact_time",
    "trunk_lean",
    "overstride",
    "shank",
    "foot_strike",
)


SWEEP = [
    "view=side-left&cadence=170&strike=midfoot",
    "view=side-right&cadence=165&overstride=0.3&strike=heel",
    "view=side-left&cadence=180&overstride=0.0&strike=forefoot&trunk_lean=12",
    "view=side-right&cadence=160&overstride=0.2&strike=midfoot",
    "view=side-right&cadence=175&strike=forefoot",
]


def sweep_cases() -> list[object]:
    cases: list[object] = []
    for query in SWEEP:
        for target in SIDE_TARGETS:
            cases.append(
                pytest.param(query, target, marks=pytest.mark.slow, id=f"{query}:{target}")
            )
    return cases


@pytest.mark.parametrize(("query", "target"), sweep_cases())
def test_side_views_through_the_pose_model(query: str, target: str) -> None:
    check_target(f"synthetic:?{query}&seconds=12", target)


@pytest.mark.slow
def test_at_contact_metrics_over_two_seeds_of_the_sweep() -> None:
    # Each seed varies every step a little (placement, timing, angles): the at-contact metrics,
    # read at an instant between frames, must hold over them all, not on one lucky rendering.
    right: list[bool] = []
    for query in SWEEP:
        for seed in (0, 1):
            seeded = f"&seed={seed}" if seed else ""  # seed 0: the very clip checked above
            record, _, steps = analyse_video(f"synthetic:?{query}{seeded}&seconds=12")
            pairs = matched(record, steps, "foot_angle_deg")
            clip = [foot_strike(ours) == foot_strike(truth) for ours, truth in pairs]
            assert len(clip) >= 8 and np.mean(clip) >= 0.8, (query, seed, np.mean(clip))
            right += clip
            assert abs(median_error(record, steps, "shank_angle_deg")) <= 4.0, (query, seed)
            assert abs(median_error(record, steps, "overstride_ratio")) <= 0.05, (query, seed)
    assert np.mean(right) >= 0.9, f"{np.mean(right):.1%} of {len(right)} steps"


def shoulder_tilts(spec: str) -> list[float]:
    record = analyse_video(spec)[0]
    return [
        s.metrics["shoulder_tilt_p2p_deg"]
        for s in record.strides
        if "shoulder_tilt_p2p_deg" in s.metrics
    ]


def check_sway_told_apart(view: str, seconds: float, least_strides: int) -> None:
    swaying = shoulder_tilts(f"synthetic:?view={view}&shoulder_sway=8&seconds={seconds:g}")
    steady = shoulder_tilts(f"synthetic:?view={view}&shoulder_sway=0&seconds={seconds:g}")
    assert len(swaying) >= least_strides and len(steady) >= least_strides
    # Every stride of the swaying runner reads more tilt than every stride of the steady one.
    assert min(swaying) > max(steady), (sorted(swaying)[:3], sorted(steady)[-3:])


@pytest.mark.slow
@pytest.mark.parametrize("view", ["front", "rear"])
def test_shoulder_sway_through_the_pose_model(view: str) -> None:
    check_sway_told_apart(view, 12.0, 20)


# -- the short version (not slow): one side view and one frontal pair, a few seconds each --
SHORT_SIDE = "view=side-left&cadence=170&strike=midfoot"


@pytest.mark.parametrize("target", SIDE_TARGETS)
def test_a_short_side_clip_through_the_pose_model(target: str) -> None:
    check_target(f"synthetic:?{SHORT_SIDE}&seconds=7", target)


def test_a_short_sway_pair_through_the_pose_model() -> None:
    check_sway_told_apart("rear", 6.0, 8)
