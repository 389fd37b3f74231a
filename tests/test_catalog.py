"""The metric catalogue: what the gait stage measures and what the packs read are in it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from landmark_streams import landmark_run, run_gait

from coachd.catalog import METRICS
from coachd.coach.pack import read_pack
from coachd.resources import data_dir
from coachd.settings import GaitSettings
from coachd.textfile import read_toml


@pytest.fixture(scope="module")
def emitted() -> dict[str, set[str]]:
    """Metric names the real gait stage reports, by view, for a runner of known height."""
    out: dict[str, set[str]] = {}
    for view in ("side-left", "front"):
        run = landmark_run(f"synthetic:?view={view}&seconds=9", seed=0)
        record = run_gait(run.frames, GaitSettings(runner_height_cm=175.0), run.params.fps)
        out[view] = {name for stride in record.strides for name in stride.metrics}
        assert len(record.strides) >= 10, view
    return out


def test_every_metric_the_gait_stage_reports_is_catalogued(emitted: dict[str, set[str]]) -> None:
    for view, names in emitted.items():
        assert names <= set(METRICS), names - set(METRICS)
        assert all(METRICS[name].seen_in(view) for name in names), view  # type: ignore[arg-type]


def test_every_catalogued_metric_is_reported_somewhere(emitted: dict[str, set[str]]) -> None:
    assert set(METRICS) == emitted["side-left"] | emitted["front"]


def test_every_rule_of_every_pack_reads_a_catalogued_metric() -> None:
    packs = sorted(data_dir("cues").glob("*.toml"))
    assert packs
    for path in packs:
        raw = read_toml(path, "cue pack")
        named = {when["metric"] for cue in raw["cues"] for when in _conditions(cue)}
        assert named <= set(METRICS), (path, named - set(METRICS))
        rules, problems = read_pack(path)
        assert problems == [] and rules, path
        for rule in rules:
            assert all(METRICS[m].seen_in(view) for m in rule.metrics for view in rule.views)


def _conditions(cue: dict[str, object]) -> list[dict[str, str]]:
    when = cue["when"]
    return when if isinstance(when, list) else [when]  # type: ignore[list-item]


def test_the_catalogue_imports_no_stage() -> None:
    """Every stage imports the catalogue, so it must import none of them (no cycles)."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, coachd.catalog; print(*sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert {m for m in loaded if m.startswith("coachd.")} == {"coachd.catalog", "coachd.messages"}


def test_each_metric_has_one_consistent_record() -> None:
    for name, metric in METRICS.items():
        assert metric.name == name and metric.label and metric.unit and metric.views
        low, high = metric.plausible
        assert low < high
        assert metric.good[0] < metric.good[1]
        if metric.overlay is not None:
            metric.overlay[1].format(1.0)
        # A summary only names what improved or what to work on for a metric that has a way
        # to be better and the words to say it.
        assert (metric.improved is None) == (metric.better is None), name
        if metric.advice is not None:
            assert metric.good != (float("-inf"), float("inf")), name
