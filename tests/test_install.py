"""The built wheel installed into a fresh venv of another supported Python: analyze, check, bench.

The install fetches coachd's requirements from the package index, and tests never touch the
network unless asked: this runs only with COACHD_INSTALL_TEST=1 (`make check-install`), and
skips with the reason where the machine has no other supported interpreter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest
from support import build_wheel

SUPPORTED_MINORS = range(9, 15)
ASKED = os.environ.get("COACHD_INSTALL_TEST") == "1"
INSTALL_TIMEOUT_S = 1800  # downloads ~150 MB and builds PyAudio

pytestmark = pytest.mark.skipif(
    not ASKED, reason="installs from the package index: run with COACHD_INSTALL_TEST=1"
)


def _version(python: Path) -> Optional[tuple[int, int]]:
    """(major, minor) of a working interpreter; None for a broken one (e.g. an idle pyenv shim)."""
    try:
        done = subprocess.run(
            [str(python), "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    major, minor = (int(part) for part in done.stdout.split())
    return major, minor


def other_interpreters() -> dict[tuple[int, int], Path]:
    """Supported interpreters other than this one's version: PATH, /usr/bin, pyenv's versions."""
    names = [f"python3.{minor}" for minor in SUPPORTED_MINORS]
    candidates = [Path(on_path) for name in names if (on_path := shutil.which(name))]
    candidates += [Path("/usr/bin") / name for name in names]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(pyenv.glob("3.*/bin/python3"))
    found: dict[tuple[int, int], Path] = {}
    for candidate in candidates:
        version = _version(candidate) if candidate.is_file() else None
        if version is None or version == sys.version_info[:2] or version in found:
            continue
        if version[0] == 3 and version[1] in SUPPORTED_MINORS:
            found[version] = candidate
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[int, int]]:
    """bin/ of a fresh venv of the newest other interpreter, with coachd's wheel installed."""
    others = other_interpreters()
    if not others:
        pytest.skip(
            f"no supported interpreter other than Python {sys.version_info[0]}."
            f"{sys.version_info[1]} on PATH, in /usr/bin or in pyenv"
        )
    version = max(others)
    root = tmp_path_factory.mktemp("install")
    wheel = build_wheel(root / "wheel")
    venv = root / "venv"
    subprocess.run([str(others[version]), "-m", "venv", str(venv)], check=True, timeout=300)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return venv / "bin", version


def coachd(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Run away from the checkout, so the installed package is the one imported.
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("COACHD_")}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [str(bin_dir / "coachd"), *args], capture_output=True, text=True, cwd=cwd, env=env,
        timeout=600,
    )  # fmt: skip


def test_installed_coachd_analyzes_the_synthetic_runner(
    installed: tuple[Path, tuple[int, int]], tmp_path: Path
) -> None:
    bin_dir, version = installed
    shown = coachd(bin_dir, tmp_path, "version")
    assert shown.returncode == 0, shown.stderr
    assert f"python {version[0]}.{version[1]}." in shown.stdout
    report = tmp_path / "report.json"
    done = coachd(
        bin_dir, tmp_path, "analyze", "synthetic:?view=side-left&seconds=8", "--json", str(report)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["view"] == "side-left"
    assert len(result["strides"]) >= 5
    assert 150.0 < result["summary"]["cadence_spm"] < 190.0


def test_installed_coachd_checks_its_shipped_models(
    installed: tuple[Path, tuple[int, int]], tmp_path: Path
) -> None:
    bin_dir, _ = installed
    done = coachd(bin_dir, tmp_path, "check")
    lines = {line.split()[1]: line for line in done.stdout.splitlines() if len(line.split()) > 2}
    pose = next(line for line in done.stdout.splitlines() if "pose model" in line)
    assert pose.startswith("OK") and "sha256 as expected" in pose
    assert str(bin_dir.parent) in pose  # the models inside the installed package
    assert lines["video"].startswith("OK")
    assert done.stdout.strip().splitlines()[-1].startswith("READY"), done.stdout


def test_installed_bench_without_stock_says_how_to_install(
    installed: tuple[Path, tuple[int, int]], tmp_path: Path
) -> None:
    bin_dir, version = installed
    if version < (3, 13):
        pytest.skip(f"Python {version[0]}.{version[1]} could have mediapipe: not the case here")
    done = coachd(
        bin_dir, tmp_path, "bench", "pose", "--source", "synthetic:?seconds=1", "--frames", "5"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "stock comparison skipped: mediapipe is not installed" in done.stdout
    assert "coachd[stock]" in done.stdout
