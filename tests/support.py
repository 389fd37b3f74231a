"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parent.parent


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
