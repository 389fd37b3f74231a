"""Cue packs: loading, merging, and one clear error per problem (file, cue id, field)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest
from support import REPO, run_coachd

from coachd.catalog import METRICS
from coachd.coach import load_packs, validate_file
from coachd.coach.pack import MAX_PHRASE_WORDS
from coachd.errors import EXIT_CONFIG, ConfigError
from coachd.resources import data_dir
from coachd.settings import EngineSettings

REQUIRED_DEFAULT_CUES = {
    "overstride",
    "waist_bend",
    "shoulder_sway",
    "shoulder_tension",
    "low_cadence",
    "bounce",
    "heel_strike",
    "heel_recovery",
    "asymmetry",
}


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def write_pack(path: Path, cues: list[dict[str, Any]], top: str = "") -> Path:
    lines = [top]
    for cue in cues:
        lines.append("[[cues]]")
        lines += [f"{key} = {toml_value(value)}" for key, value in cue.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def good_cue(**changes: Any) -> dict[str, Any]:
    cue: dict[str, Any] = {
        "id": "overstride",
        "priority": 90,
        "views": ["side-left", "side-right"],
        "why": "Braking every step.",
        "phrases": ["Land quietly under your hips.", "Push the belt back."],
        "praise": ["That's it."],
        "when": [{"metric": "overstride_ratio", "above": 0.2, "clear": 0.15}],
    }
    cue.update(changes)
    return {k: v for k, v in cue.items() if v is not None}


def condition(**changes: Any) -> list[dict[str, Any]]:
    base: dict[str, Any] = {"metric": "overstride_ratio", "above": 0.2, "clear": 0.15}
    base.update(changes)
    return [{k: v for k, v in base.items() if v is not None}]


def test_default_pack_is_valid_and_complete() -> None:
    path = data_dir("cues") / "default.toml"
    assert validate_file(path) == []
    pack = load_packs(EngineSettings())
    assert {r.id for r in pack.rules} >= REQUIRED_DEFAULT_CUES
    assert not pack.rule("heel_strike").enabled
    assert all(pack.rule(i).enabled for i in REQUIRED_DEFAULT_CUES - {"heel_strike"})
    for rule in pack.rules:
        assert len(rule.phrases) >= 2 and rule.praise and rule.why
        assert all(len(p.split()) <= MAX_PHRASE_WORDS for p in rule.phrases + rule.praise)
    recovery = pack.rule("heel_recovery")
    assert recovery.gate.min_speed_kmh is not None and recovery.gate.min_speed_kmh >= 10.0
    assert all("heel" not in p.lower() for p in recovery.phrases)
    cadence = pack.rule("low_cadence")
    kinds = {c.relative for c in cadence.conditions}
    assert kinds == {"absolute", "baseline_ratio"} and cadence.match == "any"
    assert pack.rules == tuple(sorted(pack.rules, key=lambda r: -r.priority))


def test_a_valid_minimal_pack_loads(tmp_path: Path) -> None:
    path = write_pack(tmp_path / "mine.toml", [good_cue()])
    pack = load_packs(EngineSettings(packs=[str(path)]))
    (rule,) = pack.rules
    assert rule.conditions[0].start == 0.2 and rule.conditions[0].clear == 0.15
    assert (rule.persistence_k, rule.persistence_n) == (6, 10)
    assert rule.cooldown_s is None and rule.source == str(path)


Case = tuple[str, Callable[[], list[dict[str, Any]]], str, str]
CASES: list[Case] = [
    (
        "unknown metric",
        lambda: [good_cue(when=condition(metric="stride_joy"))],
        "when[0].metric",
        "unknown metric 'stride_joy'",
    ),
    (
        "threshold out of range",
        lambda: [good_cue(when=condition(above=3.0, clear=0.1))],
        "when[0].above",
        "out of range",
    ),
    (
        "clear out of range",
        lambda: [good_cue(when=condition(clear=-2.0))],
        "when[0].clear",
        "out of range",
    ),
    (
        "ratio out of range",
        lambda: [
            good_cue(when=condition(above=None, below=0.1, clear=0.9, relative="baseline_ratio"))
        ],
        "when[0].below",
        "out of range",
    ),
    ("no phrase", lambda: [good_cue(phrases=[])], "phrases", "at least one phrase"),
    ("phrases missing", lambda: [good_cue(phrases=None)], "phrases", "at least one phrase"),
    ("no praise", lambda: [good_cue(praise=None)], "praise", "at least one phrase"),
    ("empty phrase", lambda: [good_cue(phrases=["  "])], "phrases[0]", "empty phrase"),
    (
        "phrase too long",
        lambda: [good_cue(phrases=["please try to land " + "a bit " * 10 + "closer"])],
        "phrases[0]",
        "words",
    ),
    (
        "phrase twice",
        lambda: [good_cue(phrases=["Push the belt.", "Push the belt."])],
        "phrases",
        "twice",
    ),
    ("no why", lambda: [good_cue(why=None)], "why", "missing"),
    ("unknown cue field", lambda: [good_cue(colour="red")], "colour", "unknown field"),
    (
        "unknown condition field",
        lambda: [good_cue(when=condition(above_ish=1))],
        "when[0].above_ish",
        "unknown field",
    ),
    ("above and below", lambda: [good_cue(when=condition(below=0.1))], "when[0]", "exactly one"),
    (
        "neither above nor below",
        lambda: [good_cue(when=condition(above=None))],
        "when[0]",
        "exactly one",
    ),
    ("no clear", lambda: [good_cue(when=condition(clear=None))], "when[0].clear", "missing"),
    (
        "clear stricter than start",
        lambda: [good_cue(when=condition(clear=0.3))],
        "when[0].clear",
        "hysteresis",
    ),
    (
        "clear stricter than start, below",
        lambda: [good_cue(when=condition(metric="cadence_spm", above=None, below=160, clear=150))],
        "when[0].clear",
        "hysteresis",
    ),
    (
        "bad relative",
        lambda: [good_cue(when=condition(relative="population"))],
        "when[0].relative",
        "baseline_ratio",
    ),
    (
        "speed slope on relative",
        lambda: [
            good_cue(when=condition(above=1.5, clear=1.2, relative="baseline_ratio", per_kmh=0.1))
        ],
        "when[0].per_kmh",
        "only an absolute",
    ),
    (
        "median_of out of range",
        lambda: [good_cue(when=condition(median_of=0))],
        "when[0].median_of",
        "out of range",
    ),
    ("no conditions", lambda: [good_cue(when=[])], "when", "at least one condition"),
    ("unknown view", lambda: [good_cue(views=["top-down"])], "views", "unknown view 'top-down'"),
    ("no views", lambda: [good_cue(views=[])], "views", "one or more"),
    (
        "view cannot see metric",
        lambda: [good_cue(views=["front"])],
        "views",
        "cannot be seen in any of front",
    ),
    ("persistence k > n", lambda: [good_cue(persistence=[8, 5])], "persistence", "k <= n"),
    ("persistence shape", lambda: [good_cue(persistence=6)], "persistence", "[k, n]"),
    (
        "priority missing",
        lambda: [good_cue(priority=None)],
        "priority",
        "missing; allowed: an integer",
    ),
    ("priority out of range", lambda: [good_cue(priority=5000)], "priority", "out of range"),
    ("cooldown out of range", lambda: [good_cue(cooldown_s=-1.0)], "cooldown_s", "out of range"),
    ("min_confidence", lambda: [good_cue(min_confidence=2.0)], "min_confidence", "out of range"),
    ("enabled not bool", lambda: [good_cue(enabled="yes")], "enabled", "true or false"),
    ("bad match", lambda: [good_cue(match="most")], "match", 'one of "all", "any"'),
    (
        "gate unknown",
        lambda: [good_cue(only_when={"min_pace": 5})],
        "only_when.min_pace",
        "unknown field",
    ),
    (
        "gate out of range",
        lambda: [good_cue(only_when={"min_speed_kmh": 90})],
        "only_when.min_speed_kmh",
        "out of range",
    ),
    ("duplicate id", lambda: [good_cue(), good_cue()], "id", "defined twice"),
    ("upper-case id", lambda: [good_cue(id="OverStride")], "id", "lower case"),
]


@pytest.mark.parametrize(
    ("label", "cues", "field", "message"), CASES, ids=[case[0] for case in CASES]
)
def test_each_problem_is_named_with_file_cue_and_field(
    tmp_path: Path, label: str, cues: Callable[[], list[dict[str, Any]]], field: str, message: str
) -> None:
    path = write_pack(tmp_path / "broken.toml", cues())
    problems = validate_file(path)
    assert len(problems) == 1, problems
    cue_id = cues()[0]["id"]
    assert problems[0].startswith(f"cue pack error: {path}: cue {cue_id!r}: {field}: "), problems
    assert message in problems[0]
    with pytest.raises(ConfigError) as caught:
        load_packs(EngineSettings(packs=[str(path)]))
    assert str(caught.value) == problems[0]
    assert caught.value.exit_code == EXIT_CONFIG


def test_bad_id_has_a_place_in_the_file(tmp_path: Path) -> None:
    path = write_pack(tmp_path / "p.toml", [good_cue(), good_cue(id="")])
    (problem,) = validate_file(path)
    assert "cue '#2': id:" in problem


def test_file_level_problems(tmp_path: Path) -> None:
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[[cues]]\nid = 'x\n")
    (problem,) = validate_file(bad_toml)
    assert problem.startswith(f"cue pack error: {bad_toml}: not valid TOML")
    empty = tmp_path / "empty.toml"
    empty.write_text("[pack]\nname = 'empty'\n")
    (problem,) = validate_file(empty)
    assert "cues: no cues" in problem
    extra = write_pack(tmp_path / "extra.toml", [good_cue()], top="[rules]\nx = 1\n")
    (problem,) = validate_file(extra)
    assert "rules: unknown table" in problem
    defaults = write_pack(
        tmp_path / "d.toml", [good_cue()], top="[defaults]\npersistence = [0, 4]\n"
    )
    (problem,) = validate_file(defaults)
    assert "defaults.persistence" in problem
    assert validate_file(tmp_path / "absent.toml")[0].endswith(
        "cannot read: No such file or directory"
    )


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    cues = [
        good_cue(when=condition(metric="speed_of_light")),
        good_cue(
            id="waist",
            views=["side-left"],
            phrases=[],
            why="x",
            when=[{"metric": "trunk_lean_deg", "above": 14, "clear": 11}],
        ),
        good_cue(
            id="tension",
            views=["front"],
            priority=-1,
            when=[
                {
                    "metric": "shoulder_elevation_ratio",
                    "below": 0.85,
                    "clear": 0.92,
                    "relative": "baseline_ratio",
                }
            ],
        ),
    ]
    path = write_pack(tmp_path / "three.toml", cues)
    problems = validate_file(path)
    assert len(problems) == 3
    assert [p.split(": ")[2] for p in problems] == [
        "cue 'overstride'",
        "cue 'waist'",
        "cue 'tension'",
    ]
    with pytest.raises(ConfigError) as caught:
        load_packs(EngineSettings(packs=[str(path)]))
    assert str(caught.value).splitlines() == problems


def test_later_pack_overrides_a_cue_and_enable_disable_apply(tmp_path: Path) -> None:
    gym = write_pack(
        tmp_path / "gym.toml",
        [good_cue(priority=5, when=condition(above=0.3, clear=0.25))],
    )
    settings = EngineSettings(
        packs=["default", str(gym)], enable=["heel_strike"], disable=["bounce"]
    )
    pack = load_packs(settings)
    assert pack.rule("overstride").priority == 5
    assert pack.rule("overstride").conditions[0].start == 0.3
    assert pack.rule("heel_strike").enabled and not pack.rule("bounce").enabled
    assert pack.sources[-1] == gym
    assert pack.rules[-1].id == "overstride"


def test_packs_by_name_from_search_folders(tmp_path: Path) -> None:
    local = tmp_path / "etc"
    local.mkdir()
    write_pack(local / "default.toml", [good_cue(priority=1)])
    pack = load_packs(EngineSettings(), search=[local, data_dir("cues")])
    assert [r.id for r in pack.rules] == ["overstride"], "a local pack of the same name wins"
    with pytest.raises(ConfigError, match=r"no pack named 'nope'.*available: default"):
        load_packs(EngineSettings(packs=["nope"]), search=[local])
    with pytest.raises(ConfigError, match="no such file"):
        load_packs(EngineSettings(packs=[str(tmp_path / "missing.toml")]))


def test_unknown_ids_in_enable_or_disable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"engine.enable: unknown cue id 'heel_flick'"):
        load_packs(EngineSettings(enable=["heel_flick"]))
    with pytest.raises(ConfigError, match=r"engine.disable: unknown cue id 'x'"):
        load_packs(EngineSettings(disable=["x"]))
    with pytest.raises(ConfigError, match="both name"):
        load_packs(EngineSettings(enable=["bounce"], disable=["bounce"]))
    with pytest.raises(ConfigError, match=r"engine\.packs is empty"):
        load_packs(EngineSettings(packs=[]))


def test_every_catalogued_metric_is_documented_in_docs_metrics() -> None:
    text = (REPO / "docs" / "metrics.md").read_text()
    missing = [name for name in METRICS if f"`{name}`" not in text]
    assert not missing, f"docs/metrics.md does not define {missing}"


# --- the command line --------------------------------------------------------------------


def coachd(*args: str) -> subprocess.CompletedProcess[str]:
    return run_coachd(*args, env={"HOME": "/tmp"})


def test_cli_validate(tmp_path: Path) -> None:
    ok = coachd("cues", "validate", str(data_dir("cues") / "default.toml"))
    assert ok.returncode == 0 and "valid" in ok.stdout
    broken = write_pack(tmp_path / "broken.toml", [good_cue(phrases=[], when=condition(clear=1.0))])
    result = coachd("cues", "validate", str(broken))
    assert result.returncode == EXIT_CONFIG
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert all(
        line.startswith(f"coachd: cue pack error: {broken}: cue 'overstride': ") for line in lines
    )
    usage = coachd("cues", "validate")
    assert usage.returncode == 2 and "name one or more pack files" in usage.stderr


def test_cli_list() -> None:
    result = coachd("cues", "list")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:]}
    assert set(rows) >= REQUIRED_DEFAULT_CUES
    assert rows["heel_strike"][1] == "no" and rows["overstride"][1] == "yes"
    assert "overstride_ratio" in " ".join(rows["overstride"])
    assert "side-left,side-right" in rows["overstride"]
    enabled = coachd("cues", "list", "--set", 'engine.enable=["heel_strike"]')
    assert [
        line.split()[1] for line in enabled.stdout.splitlines() if line.startswith("heel_strike")
    ] == ["yes"]
    broken = coachd("cues", "list", "--set", "engine.packs=['/nonexistent/pack.toml']")
    assert broken.returncode == EXIT_CONFIG and "no such file" in broken.stderr
