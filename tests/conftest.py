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
# each of their tests may go to either worker.
SPLIT_MODULES = {"tests/test_coach_video.py"}


def work_unit(nodeid: str) -> str:
    """What one xdist worker runs whole: the real-time soaks (modules *_soak.py) one after the
    other, and each module's tests (they share module fixtures and caches) unless it is split."""
    module = nodeid.split("::")[0]
    if module.endswith("_soak.py"):
        return "soaks"
    return nodeid if module in SPLIT_MODULES else module


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`pytest -n 2` (make test): one worker runs the soaks, which mostly wait on the daemon,
    while the other takes the CPU-bound tests; units go out in the order below."""
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # keep pytest_collection_modifyitems' order
    return WorkUnits(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The soaks first, so that they start at once on one worker; then the slow tests, so that
    no long test is left for the end (stable: the collection's order within each)."""

    def rank(item: pytest.Item) -> int:
        return 0 if item.get_closest_marker("soak") else 1 if item.get_closest_marker("slow") else 2

    items.sort(key=rank)


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
