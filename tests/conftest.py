"""Fixtures shared by every test module."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import run_coachd

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CLIP = SHARED / "data" / "treadmill_side.mp4"
CLIP_TRUTH = SHARED / "data" / "treadmill_side.truth.json"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def real_clip() -> Path:
    """The real treadmill clip from ../shared; skips where a user's checkout has no ../shared."""
    if not CLIP.is_file():
        pytest.skip(f"real clip absent: {CLIP} (../shared is only beside the project in CI)")
    return CLIP


@pytest.fixture(scope="session")
def real_clip_truth(real_clip: Path) -> dict[str, Any]:
    return json.loads(CLIP_TRUTH.read_text())


@pytest.fixture(scope="session")
def analysed_clip(real_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of `coachd analyze` over the real clip, with an overlay video."""
    out = tmp_path_factory.mktemp("analyze")
    json_path, overlay = out / "clip.json", out / "clip.mp4"
    result = run_coachd(
        "analyze", str(real_clip), "--json", str(json_path), "--overlay", str(overlay), timeout=300
    )
    assert result.returncode == 0, result.stderr
    return {"json": json.loads(json_path.read_text()), "overlay": overlay, "stderr": result.stderr}
