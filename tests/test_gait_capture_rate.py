"""`coachd analyze` on clips whose frames were captured at another rate than they play at."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from support import run_coachd


@pytest.fixture(scope="module")
def slow_motion_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One second of a test pattern at 30 fps, tagged as an Android phone tags slow motion."""
    path = tmp_path_factory.mktemp("slowmo") / "slowmo.mp4"
    pattern = ("-f", "lavfi", "-i", "testsrc=size=160x120:rate=30", "-t", "1")
    tag = ("-metadata", "com.android.capture.fps=240.000000", "-movflags", "use_metadata_tags")
    subprocess.run(
        ["ffmpeg", "-v", "error", *pattern, "-c:v", "libx264", *tag, str(path)],
        check=True,
        timeout=60,
    )
    return path


def test_the_capture_rate_is_read_from_the_file(slow_motion_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    result = run_coachd("analyze", str(slow_motion_clip), "--json", str(out), timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["fps"] == 240.0 and data["checks"]["stored_fps"] == 30.0
    assert "timed at the capture rate, 240 fps (the file plays at 30)" in result.stderr
    # No runner in a test pattern: the reason is one line.
    why = [line for line in result.stderr.splitlines() if line.startswith("no steps measured")]
    assert why == ["no steps measured: " + data["checks"]["why_no_steps"]]
    assert "no runner" in why[0]


def test_capture_fps_overrides_the_tags(slow_motion_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    result = run_coachd(
        "analyze", str(slow_motion_clip), "--capture-fps", "120", "--json", str(out), timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["fps"] == 120.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["synthetic:?seconds=1", "--capture-fps", "240"], "only for video files"),
        (["{clip}", "--capture-fps", "10"], "10 fps is too slow to time foot contacts"),
        (["{clip}", "--capture-fps", "fast"], "give frames per second, 1 to 1000"),
    ],
)
def test_a_capture_rate_that_cannot_work_is_one_line(
    slow_motion_clip: Path, args: list[str], message: str
) -> None:
    result = run_coachd("analyze", *(a.format(clip=slow_motion_clip) for a in args))
    assert result.returncode == 2
    # One line of error (a value argparse refuses comes after the usage, as for every flag).
    errors = [line for line in result.stderr.strip().splitlines() if message in line]
    assert len(errors) == 1 and result.stderr.strip().endswith(errors[0]), result.stderr


def test_a_clip_wrongly_taken_for_slow_motion_says_which_rate_to_give(
    real_clip: Path, tmp_path: Path
) -> None:
    """The real clip is not slow motion: timed at 300 fps its steps come ten times too slowly
    to be steps, and the one line says how to time it as it plays."""
    out = tmp_path / "a.json"
    result = run_coachd(
        "analyze", str(real_clip), "--capture-fps", "300", "--json", str(out), timeout=300
    )
    assert result.returncode == 0, result.stderr
    why = json.loads(out.read_text())["checks"]["why_no_steps"]
    assert why is not None and "give --capture-fps 30" in why, why
