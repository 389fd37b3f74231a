"""The wheel carries cues/, config/, the pose models and the live page, so an installed
coachd finds them without the checkout; one OpenCV wheel only."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support import build_wheel

from coachd.commands.check import opencv_distributions
from coachd.pose.litert_backend import MODEL_SHA256
from coachd.service.live import STATIC_FILES


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_wheel_carries_data_folders(wheel: Path, repo_root: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("cues", "config"):
        shipped = sorted(p.name for p in (repo_root / folder).iterdir() if p.is_file())
        assert shipped, f"{folder}/ is empty"
        for name in shipped:
            assert f"coachd/_data/{folder}/{name}" in names


def test_installed_wheel_finds_its_data(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    code = (
        "from coachd.resources import data_dir; import sys; "
        "p = data_dir('cues'); print(p); sys.exit(0 if '_data' in str(p) else 1)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(target) in result.stdout


def test_wheel_carries_the_pose_models_with_licence_and_notice(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in [*MODEL_SHA256, "LICENSE", "NOTICE"]:
        assert f"coachd/pose/models/{name}" in names


def test_wheel_carries_the_live_page(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for _, (name, _) in STATIC_FILES.items():
        assert f"coachd/service/web/{name}" in names


def test_wheel_requires_no_mediapipe_but_offers_it_as_stock(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        metadata = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        requires = [
            line.split(":", 1)[1].strip()
            for line in zf.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    mediapipe = [r for r in requires if r.startswith("mediapipe")]
    assert mediapipe and all("extra == 'stock'" in r.replace('"', "'") for r in mediapipe)
    assert any(r.startswith("opencv-contrib-python") for r in requires)


def test_one_opencv_wheel_provides_cv2() -> None:
    assert opencv_distributions() == ["opencv-contrib-python"]
