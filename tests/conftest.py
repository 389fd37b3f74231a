"""Fixtures shared by every test module, and how two xdist workers share the tests."""

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
# Modules whose tests are independent long runs (no shared fixture or cache): under xdist
# each test may go to either worker.
SPLIT_MODULES = {"tests/test_coach_video.py"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order and group the tests for `-n 2 --dist loadgroup --no-loadscope-reorder` (make test).

    The real-time soaks come first, as one group: one worker runs them one after the other
    while they mostly wait on the daemon, and the other worker takes the CPU-bound tests.
    The slow tests come next, so that no long test is left for the end. A module's tests
    stay on one worker (they share module fixtures and caches) unless it is in SPLIT_MODULES.
    Without xdist the marks do nothing and only the order changes.
    """

    def rank(item: pytest.Item) -> int:
        return 0 if item.get_closest_marker("soak") else 1 if item.get_closest_marker("slow") else 2

    items.sort(key=rank)  # stable: the order within each rank is the collection's
    for item in items:
        module = item.nodeid.split("::")[0]
        if item.get_closest_marker("soak"):
            item.add_marker(pytest.mark.xdist_group("soak"))
        elif module not in SPLIT_MODULES:  # an ungrouped test is a unit of its own
            item.add_marker(pytest.mark.xdist_group(module))


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
