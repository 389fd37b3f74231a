"""`coachd analyze` end to end: real clip -> pose model -> gait -> JSON and overlay video."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
from support import run_coachd

from coachd.catalog import METRIC_NAMES

STRIDE_KEYS = {"t", "side", "duration_s", "confidence", "foot_strike"}


def test_json_has_the_documented_shape(analysed_clip: dict[str, Any], real_clip: Path) -> None:
    data = analysed_clip["json"]
    assert set(data) == {
        "source",
        "fps",
        "frames",
        "checks",
        "view",
        "summary",
        "strides",
        "events",
        "cues",
    }
    assert set(data["checks"]) == {"label_repairs", "steps_rejected", "why_no_steps"}
    assert data["checks"]["why_no_steps"] is None
    assert data["source"] == str(real_clip)
    assert data["fps"] == 30.0 and data["frames"] == 360
    assert data["view"] == "side-left"
    # The clip is 12 s: a session starts (greeting) and ends with the clip (summary); its
    # form shows nothing to correct (docs/metrics.md), and the warm-up would hold it anyway.
    assert [c["kind"] for c in data["cues"]] == ["greeting", "summary"]
    assert all(set(c) == {"t", "id", "kind", "text"} for c in data["cues"])
    assert data["strides"] and data["events"]
    for stride in data["strides"]:
        assert stride["side"] in ("left", "right")
        assert 0.0 <= stride["t"] <= 12.0
        metrics = set(stride) - STRIDE_KEYS
        assert metrics <= set(METRIC_NAMES), metrics - set(METRIC_NAMES)
        assert set(stride["confidence"]) == metrics
        assert all(isinstance(stride[k], float) for k in metrics)
    for event in data["events"]:
        assert set(event) == {"t", "side", "kind"}
        assert event["kind"] in ("contact", "toe_off")
    times = [e["t"] for e in data["events"]]
    assert times == sorted(times)
    summary = data["summary"]
    assert set(summary) - {"foot_strike", "steps"} <= set(METRIC_NAMES)
    assert summary["steps"] == len(data["strides"])
    assert "analysed 360 frames" in analysed_clip["stderr"]


def test_real_clip_cadence_and_contact_are_right(
    analysed_clip: dict[str, Any], real_clip_truth: dict[str, Any]
) -> None:
    summary = analysed_clip["json"]["summary"]
    cadence = real_clip_truth["cadence_spm"]["value"]
    assert abs(summary["cadence_spm"] - cadence) <= 0.01 * cadence
    low, high = real_clip_truth["physiological_bands"]["contact_time_ms"]
    assert low <= summary["contact_time_ms"] <= high
    low, high = real_clip_truth["physiological_bands"]["duty_factor_pct"]
    assert low <= 100.0 * summary["duty_factor"] <= high
    # A side view: no shoulder roll or sway, which cannot be seen from the side.
    assert "shoulder_tilt_p2p_deg" not in summary
    assert "shoulder_sway_ratio" not in summary


def test_real_clip_steps_alternate_feet(analysed_clip: dict[str, Any]) -> None:
    strides = analysed_clip["json"]["strides"]
    assert len(strides) >= 20  # 12 s at ~169 steps/min is ~33 steps; the first 1-2 s warm up
    alternating = sum(a["side"] != b["side"] for a, b in zip(strides, strides[1:]))
    assert alternating >= 0.9 * (len(strides) - 1)


def test_overlay_video_has_every_frame(analysed_clip: dict[str, Any]) -> None:
    video = cv2.VideoCapture(str(analysed_clip["overlay"]))
    try:
        assert video.isOpened()
        assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 360
        ok, image = video.read()
        assert ok and image.shape[:2] == (1280, 720)
    finally:
        video.release()


def test_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    result = run_coachd("analyze", str(tmp_path / "nope.mp4"), timeout=120)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("coachd:")]
    assert len(lines) == 1 and "nope.mp4" in lines[0]
    assert "Traceback" not in result.stderr


def test_an_overlay_that_is_not_a_video_name_is_a_usage_error(
    real_clip: Path, tmp_path: Path
) -> None:
    overlay = str(tmp_path / "out.txt")
    result = run_coachd("analyze", str(real_clip), "--overlay", overlay, timeout=120)
    assert result.returncode == 2
    assert ".mp4" in result.stderr
