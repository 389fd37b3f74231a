"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

from coachd.pose.mediapipe_backend import stock_missing

REPO = Path(__file__).resolve().parent.parent
STOCK_MISSING = stock_missing()
# Tests that compare with stock mediapipe (the extra coachd[stock]) skip without it.
needs_stock = pytest.mark.skipif(STOCK_MISSING is not None, reason=f"{STOCK_MISSING}")
BACKENDS = ["litert", pytest.param("mediapipe", marks=needs_stock)]


def run_coachd(
    *args: str, env: Optional[dict[str, str]] = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The real command line in a fresh interpreter, with no COACHD_ variables inherited."""
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("COACHD_")}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "coachd", *args],
        capture_output=True,
        text=True,
        env=clean,
        cwd=REPO,
        timeout=timeout,
    )
