"""`coachd bench gait`: its scoring on known events, and a small run through the real chain."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from coachd.bench.gait import Variant, plan_variants, score, summarise
from coachd.commands.analyze import Analysis
from coachd.messages import GaitEvent, Stride

FPS = 30.0


def contacts(times: list[float]) -> list[GaitEvent]:
    return [
        GaitEvent(t, "left" if n % 2 == 0 else "right", "contact", t + 0.1)
        for n, t in enumerate(times)
    ]


def steps(times: list[float], lean: float) -> list[Stride]:
    return [
        Stride(t, "left", "side-left", 0.35, {"cadence_spm": 171.4, "trunk_lean_deg": lean})
        for t in times
    ]


def test_scoring_counts_found_missed_and_spurious_steps_and_timing() -> None:
    truth_times = [0.1 + 0.35 * n for n in range(20)]  # 171.4 spm
    ours = [t + 1.0 / FPS for t in truth_times[:18]]  # a frame late, the last two missed
    ours.insert(5, truth_times[4] + 0.17)  # one in mid-flight: spurious
    measured = Analysis("synthetic:", FPS, events=contacts(ours), strides=steps(ours, 8.0))
    clip = score(
        Variant(seed=1, fault=None, seconds=7.2),
        FPS,
        171.4,
        contacts(truth_times),
        steps(truth_times, 6.0),
        measured,
    )
    assert (clip["truth_steps"], clip["found"], clip["missed"], clip["spurious"]) == (20, 18, 2, 1)
    assert clip["median_contact_error_frames"] == pytest.approx(1.0)
    assert clip["errors"]["trunk_lean_deg"] == pytest.approx(2.0)
    assert clip["errors"]["cadence_spm"] == pytest.approx(0.0, abs=0.05)
    assert clip["clean_corrected"] is False and clip["fault_cued"] is None
    overall = summarise([clip])
    assert overall["steps_found_pct"] == pytest.approx(90.0)
    assert overall["goals"]["steps_found_pct"]["met"] is False
    assert overall["goals"]["trunk_lean_deg_error"]["met"] is True


def test_a_contact_before_the_end_cut_may_be_measured_just_after_it() -> None:
    variant = Variant(seed=1, fault=None, seconds=2.0)  # contacts scored up to 1.75 s
    truth = contacts([1.05, 1.40, 1.74])
    measured = Analysis("synthetic:", FPS, events=contacts([1.05, 1.40, 1.74 + 1.0 / FPS]))
    clip = score(variant, FPS, 171.4, truth, [], measured)
    assert (clip["found"], clip["missed"], clip["spurious"]) == (3, 0, 0)
    late = Analysis("synthetic:", FPS, events=contacts([1.05, 1.40, 1.90]))
    clip = score(variant, FPS, 171.4, truth, [], late)  # 160 ms late: missed, not scored
    assert (clip["found"], clip["missed"], clip["spurious"]) == (2, 1, 0)
    after = contacts([1.05, 1.40, 1.77])  # the truth's third contact just after the cut
    early = Analysis("synthetic:", FPS, events=contacts([1.05, 1.40, 1.77 - 1.0 / FPS]))
    clip = score(variant, FPS, 171.4, after, [], early)
    assert (clip["truth_steps"], clip["found"], clip["spurious"]) == (2, 2, 0)


def test_each_seed_runs_again_at_30_fps_per_drop_rate() -> None:
    variants = plan_variants([5, 6], 10.0, [25.0, 50.0])
    assert [v.seed for v in variants] == [5, 5, 5, 6, 6, 6]
    assert [v.drop_pct for v in variants[:3]] == [0.0, 25.0, 50.0]
    assert "fps=30" in variants[1].spec and "fps" not in variants[0].spec
    assert len({v.fault for v in plan_variants(range(40), 10.0)}) == 4  # 3 faults and clean


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coachd", "bench", "gait", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_small_bench_through_the_pose_model_and_the_chain() -> None:
    # vary=39: a 25 fps portrait clip; again at 30 fps with half of its frames dropped.
    result = run_bench("--seeds", "39", "--seconds", "4", "--drop", "50", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["seeds"] == [39]
    full, dropped = report["clips"]
    assert full["fps"] == 25 and full["frames_tracked"] == 100
    assert dropped["fps"] == 30 and 40 <= dropped["frames_tracked"] <= 80
    for clip in (full, dropped):
        assert clip["truth_steps"] >= 9
        assert clip["found"] + clip["missed"] == clip["truth_steps"]
    assert full["found"] > 0  # the chain measured steps on the varied runner
    overall = report["overall"]
    assert overall["truth_steps"] == full["truth_steps"] + dropped["truth_steps"]
    assert set(overall["goals"]) >= {"steps_found_pct", "cadence_error_spm"}


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--drop", "100"], "--drop"),
        (["--seconds", "1"], "--seconds"),
        (["--count", "0"], "--count"),
    ],
)
def test_bad_bench_arguments_are_one_line(args: list[str], named: str) -> None:
    result = run_bench(*args)
    assert result.returncode == 2
    assert named in result.stderr and len(result.stderr.strip().splitlines()) == 1
