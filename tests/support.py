"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

from coachd.pose.mediapipe_backend import stock_missing
from coachd.settings import SpeechSettings
from coachd.speech.render import key_path, phrase_key

REPO = Path(__file__).resolve().parent.parent
STOCK_MISSING = stock_missing()
# Tests that compare with stock mediapipe (the extra coachd[stock]) skip without it.
needs_stock = pytest.mark.skipif(STOCK_MISSING is not None, reason=f"{STOCK_MISSING}")
BACKENDS = ["litert", pytest.param("mediapipe", marks=needs_stock)]


def run_coachd(
    *args: str, env: Optional[dict[str, str]] = None, timeout: float = 60, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """The real command line in a fresh interpreter, with no COACHD_ variables inherited."""
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("COACHD_")}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "coachd", *args],
        capture_output=True,
        text=True,
        env=clean,
        cwd=cwd,
        timeout=timeout,
    )


def cache_path(cache_dir: Path, settings: SpeechSettings, text: str) -> Path:
    """Where the voice cache keeps `text` spoken with `settings`."""
    return key_path(cache_dir, phrase_key(settings, text))


def build_wheel(out: Path) -> Path:
    """coachd's wheel, built from this checkout into `out` (needs hatchling, from the dev extra)."""
    try:
        import hatchling  # noqa: F401
    except ImportError:
        pytest.skip("hatchling is not installed in this environment")
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run(
        [*pip_wheel, "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    return next(out.glob("coachd-*.whl"))
