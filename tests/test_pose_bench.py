"""`coachd bench pose`: both backends on the same frames, as JSON and as a table; LiteRT alone
without mediapipe."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from support import STOCK_MISSING, needs_stock, run_coachd


def coachd(*args: str) -> subprocess.CompletedProcess[str]:
    return run_coachd(*args, timeout=300)


@needs_stock
def test_bench_pose_json(real_clip: Path) -> None:
    done = coachd("bench", "pose", "--source", str(real_clip), "--frames", "12", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["frames"] == 12 and report["timed_frames"] == 7
    assert report["image_size"] == [720, 1280]
    assert set(report["backends"]) == {"mediapipe", "litert"}
    for summary in report["backends"].values():
        assert summary["frames_with_pose"] == 12
        assert 0.0 < summary["median_ms"] <= summary["p95_ms"]
        assert summary["fps"] > 0.0 and summary["cpu_use"] > 0.0
    ratio = report["backends"]["litert"]["median_ms"] / report["backends"]["mediapipe"]["median_ms"]
    assert abs(report["ratio_median"] - ratio) < 0.01
    assert report["agreement"]["frames"] == 12
    assert 0.0 <= report["agreement"]["median_pct_torso"] < 2.0
    assert "pose: 12/12" in done.stderr  # progress goes to stderr, the report alone to stdout


@needs_stock
def test_bench_pose_table_and_errors(real_clip: Path) -> None:
    done = coachd("bench", "pose", "--source", str(real_clip), "--frames", "3")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "litert/mediapipe median time" in done.stdout
    assert "landmark agreement" in done.stdout
    bad = coachd("bench", "pose", "--frames", "0")
    assert bad.returncode == 2
    assert "--frames 0" in bad.stderr
    missing = coachd("bench", "pose", "--source", "/nonexistent/clip.mp4")
    assert missing.returncode == 1
    assert "/nonexistent/clip.mp4" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.skipif(STOCK_MISSING is None, reason="mediapipe is installed (run in a venv without)")
def test_bench_without_stock_times_litert_and_says_how_to_install(real_clip: Path) -> None:
    done = coachd("bench", "pose", "--source", str(real_clip), "--frames", "12", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert set(report["backends"]) == {"litert"}
    assert report["backends"]["litert"]["frames_with_pose"] == 12
    assert "agreement" not in report and "ratio_median" not in report
    assert "coachd[stock]" in report["stock_comparison"]
    table = coachd("bench", "pose", "--source", str(real_clip), "--frames", "3")
    assert table.returncode == 0, table.stderr[-2000:]
    assert "stock comparison skipped: mediapipe is not installed" in table.stdout
    assert "pip install 'coachd[stock]'" in table.stdout


def test_bench_live_runs_the_layouts_in_turn_and_gives_their_cpu_ratio() -> None:
    done = coachd(
        "bench", "live", "--fps", "30", "--seconds", "1.5", "--layout", "serial", "single",
        "--repeat", "2", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    runs = report["runs"]
    assert [(run["layout_asked"], run["round"]) for run in runs] == [
        ("serial", 1), ("single", 1), ("serial", 2), ("single", 2),
    ]  # fmt: skip
    assert [run["layout"] for run in runs[:2]] == ["1 worker x 2 thread", "1 worker x 1 thread"]
    for run in runs:
        assert run["frames_tracked"] > 0 and run["gait_ms_per_frame"] > 0.0
        assert run["cpu_ms_per_frame"] > run["cpu_ms_per_frame_without_capture"] > 0.0
    (ratio,) = report["cpu_ratios"]
    assert (ratio["layout"], ratio["against"]) == ("single", "serial")
    pairs = (runs[:2], runs[2:])
    expected = sorted(
        single["cpu_ms_per_frame"] / serial["cpu_ms_per_frame"] for serial, single in pairs
    )
    whole = ratio["cpu_ms_per_frame"]
    assert whole["min"] == pytest.approx(expected[0], abs=1e-3)
    assert whole["max"] == pytest.approx(expected[1], abs=1e-3)
    bad = coachd("bench", "live", "--repeat", "0")
    assert bad.returncode == 2 and "--repeat 0" in bad.stderr
