"""`coachd check` on this machine: no camera, no sound card, the real pose model."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pytest
from support import run_coachd

from coachd.capture.camera import video_devices
from coachd.cli import main
from coachd.errors import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK
from coachd.pose.litert_backend import MODEL_SHA256, model_paths

REPO = Path(__file__).resolve().parent.parent
CheckHere = Callable[..., tuple[int, str]]


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return run_coachd("check", *args)


def items(stdout: str) -> dict[str, tuple[str, str]]:
    """'STATUS  item  detail' lines (columns split by 2+ spaces) -> {item: (status, detail)}."""
    found = {}
    for line in stdout.splitlines():
        parts = re.split(r"\s{2,}", line, maxsplit=2)
        if len(parts) == 3 and parts[0] in ("OK", "MISSING", "ERROR"):
            found[parts[1]] = (parts[0], parts[2])
    return found


@pytest.fixture
def check_here(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> CheckHere:
    """`coachd check ARGS` in this process (quicker): (exit status, stdout)."""
    for name in list(os.environ):
        if name.upper().startswith("COACHD_"):
            monkeypatch.delenv(name)

    def run(*args: str) -> tuple[int, str]:
        status = main(["check", *args])
        return status, capsys.readouterr().out

    return run


@pytest.fixture(scope="module")
def plain_check(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    config = tmp_path_factory.mktemp("check") / "coachd.toml"
    config.write_text('[camera]\nsource = "auto"\n')
    return check("--config", str(config))


@pytest.mark.timeout(120)
def test_check_reports_each_item_and_the_verdict(
    plain_check: subprocess.CompletedProcess[str],
) -> None:
    found = items(plain_check.stdout)
    assert found["pose model"][0] == "OK"
    assert "pose_landmark_full.tflite" in found["pose model"][1]
    assert "sha256 as expected" in found["pose model"][1]
    assert found["config"][0] == "OK" and "coachd.toml" in found["config"][1]
    assert found["video files"][0] == "OK"
    assert found["tts voices"][0] in ("OK", "MISSING")
    verdict = plain_check.stdout.strip().splitlines()[-1]
    synthetic_ok = found["synthetic"][0] == "OK"
    camera_ok = found["camera source"][0] == "OK"
    if synthetic_ok or camera_ok:
        assert plain_check.returncode == EXIT_OK
        assert verdict.startswith("READY")
    else:  # nothing to watch: no camera and no synthetic runner to fall back on
        assert plain_check.returncode == EXIT_FAILURE
        assert verdict.startswith("NOT READY") and "synthetic" in verdict


def test_no_camera_is_missing_with_advice(plain_check: subprocess.CompletedProcess[str]) -> None:
    if video_devices():
        pytest.skip("this machine has a camera")
    status, detail = items(plain_check.stdout)["camera source"]
    assert status == "MISSING"
    assert "synthetic runner" in detail
    assert "fix:" in detail and "/dev/video" in detail


def test_no_sound_card_is_missing_with_advice(
    plain_check: subprocess.CompletedProcess[str],
) -> None:
    if (
        Path("/proc/asound/cards").is_file()
        and "no soundcards" not in Path("/proc/asound/cards").read_text()
    ):
        pytest.skip("this machine has a sound card")
    status, detail = items(plain_check.stdout)["audio output"]
    assert status == "MISSING"
    assert "printed" in detail and "fix:" in detail
    # PortAudio, ALSA and JACK probing chatter is kept off the terminal
    assert "ALSA lib" not in plain_check.stderr
    assert "jack" not in plain_check.stderr.lower()


def test_wrong_pose_model_is_essential(tmp_path: Path, check_here: CheckHere) -> None:
    # A real model, but not the one expected under that name; then bytes that are no model.
    shipped = Path(model_paths()[0])
    (tmp_path / "pose_detection.tflite").write_bytes(shipped.read_bytes())
    (tmp_path / "pose_landmark_full.tflite").write_bytes(shipped.read_bytes())
    returncode, stdout = check_here("--pose-models", str(tmp_path))
    status, detail = items(stdout)["pose model"]
    assert status == "MISSING"
    assert "pose_landmark_full.tflite is not the expected file" in detail
    assert MODEL_SHA256["pose_landmark_full.tflite"] in detail and "reinstall coachd" in detail
    assert returncode == EXIT_FAILURE
    assert stdout.strip().splitlines()[-1].startswith("NOT READY")
    assert "pose model" in stdout.strip().splitlines()[-1]
    (tmp_path / "pose_detection.tflite").write_bytes(b"not a flatbuffer" * 64)
    returncode, stdout = check_here("--pose-models", str(tmp_path))
    status, detail = items(stdout)["pose model"]
    assert status == "MISSING" and "pose_detection.tflite is not the expected file" in detail
    assert returncode == EXIT_FAILURE


def test_copied_pose_models_pass(tmp_path: Path, check_here: CheckHere) -> None:
    for path in model_paths():
        shutil.copy(path, tmp_path / path.name)
    _, stdout = check_here("--pose-models", str(tmp_path))
    status, detail = items(stdout)["pose model"]
    assert status == "OK" and "sha256 as expected" in detail and str(tmp_path) in detail


def test_absent_pose_model_is_named(tmp_path: Path, check_here: CheckHere) -> None:
    returncode, stdout = check_here("--pose-models", str(tmp_path))
    status, detail = items(stdout)["pose model"]
    assert status == "MISSING" and "not found" in detail
    assert returncode == EXIT_FAILURE


def test_invalid_settings_are_reported_and_exit_78(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[camera]\nfps = 0\n")
    done = check("--config", str(config))
    status, detail = items(done.stdout)["config"]
    assert status == "ERROR" and "camera.fps" in detail
    assert items(done.stdout)["pose model"][0] == "OK"  # the rest is still checked
    assert done.returncode == EXIT_CONFIG
    assert "Traceback" not in done.stderr


def test_configured_source_that_cannot_open_is_essential(
    tmp_path: Path, check_here: CheckHere
) -> None:
    missing = tmp_path / "run.mp4"
    returncode, stdout = check_here("--set", f"camera.source={missing}")
    status, detail = items(stdout)["camera source"]
    assert status == "MISSING" and str(missing) in detail and "fix:" in detail
    assert returncode == EXIT_FAILURE
    assert "camera source" in stdout.strip().splitlines()[-1]


def test_configured_video_file_opens(real_clip: Path, check_here: CheckHere) -> None:
    _, stdout = check_here("--set", f"camera.source={real_clip}", "--set", "camera.rotation=90")
    status, detail = items(stdout)["camera source"]
    assert status == "OK"
    assert "720x1280 @ 30 fps" in detail and "rotated 90" in detail
