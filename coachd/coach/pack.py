"""Cue packs: TOML files of coaching rules, loaded and validated into frozen dataclasses.

A pack is data, not code: a gym or a coach changes thresholds and wording without touching
Python. Every problem in every file is reported at once, one line each, naming the file, the
cue id and the field, so `coachd cues validate` and a refused `coachd run` say what to fix.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Optional

from coachd.errors import ConfigError
from coachd.messages import VIEWS, View
from coachd.resources import data_dir
from coachd.settings import EngineSettings
from coachd.textfile import read_toml

SYSTEM_PACK_DIR = Path("/etc/coachd/cues")
MAX_PHRASE_WORDS = 12  # a cue is said between two breaths

Relative = Literal["absolute", "baseline_ratio", "baseline_delta"]
Match = Literal["all", "any"]

SIDE: tuple[View, ...] = ("side-left", "side-right")
FRONTAL: tuple[View, ...] = ("front", "rear")


@dataclass(frozen=True)
class MetricSpec:
    """A stride metric a rule may read: its plausible range and the views that can see it."""

    name: str
    low: float
    high: float
    views: tuple[View, ...]
    unit: str


# Names and views from docs/metrics.md; ranges bound what a threshold may sensibly be.
METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("cadence_spm", 60.0, 260.0, VIEWS, "steps/min"),
        MetricSpec("overstride_ratio", -0.5, 1.0, SIDE, "of leg length"),
        MetricSpec("shank_angle_deg", -45.0, 60.0, SIDE, "deg"),
        MetricSpec("trunk_lean_deg", -30.0, 60.0, SIDE, "deg"),
        MetricSpec("shoulder_tilt_p2p_deg", 0.0, 60.0, FRONTAL, "deg"),
        MetricSpec("shoulder_sway_ratio", 0.0, 2.0, FRONTAL, "of shoulder width"),
        MetricSpec("shoulder_elevation_ratio", 0.0, 1.5, FRONTAL, "of torso length"),
        MetricSpec("foot_angle_deg", -60.0, 60.0, SIDE, "deg"),
        MetricSpec("vertical_oscillation_ratio", 0.0, 0.5, VIEWS, "of leg length"),
        MetricSpec("knee_lift_deg", 0.0, 120.0, SIDE, "deg"),
        MetricSpec("heel_recovery_ratio", 0.0, 1.5, SIDE, "of leg length"),
        MetricSpec("contact_time_ms", 50.0, 1000.0, SIDE, "ms"),
        MetricSpec("duty_factor", 0.0, 1.0, SIDE, "of the stride"),
        MetricSpec("contact_time_asymmetry_pct", 0.0, 200.0, FRONTAL, "%"),
        MetricSpec("heel_recovery_asymmetry_pct", 0.0, 200.0, SIDE, "%"),
        MetricSpec("belt_speed_kmh", 0.0, 40.0, SIDE, "km/h"),
    )
}

# A baseline_ratio threshold is a factor of the runner's own value.
RATIO_RANGE = (0.3, 3.0)


@dataclass(frozen=True)
class Condition:
    """One metric compared with a start threshold and a looser clear threshold (hysteresis).

    `start`/`clear` are in the metric's unit (absolute), a factor of the runner's baseline
    (baseline_ratio) or an offset from it (baseline_delta). `per_kmh` moves an absolute
    threshold with belt speed, from `ref_kmh`, when the speed is known. `median_of` compares
    the median of that many recent strides, for metrics that are noisy per step (cadence at
    30 fps is quantised to whole frames, with the odd missed or doubled contact).
    """

    metric: str
    direction: Literal["above", "below"]
    start: float
    clear: float
    relative: Relative = "absolute"
    per_kmh: float = 0.0
    ref_kmh: float = 10.0
    median_of: int = 1

    def describe(self) -> str:
        sign = ">" if self.direction == "above" else "<"
        if self.relative == "baseline_ratio":
            start, clear = f"{self.start:g}x baseline", f"{self.clear:g}x"
        elif self.relative == "baseline_delta":
            start, clear = f"baseline{self.start:+g}", f"{self.clear:+g}"
        else:
            start, clear = f"{self.start:g}", f"{self.clear:g}"
        text = f"{self.metric} {sign} {start} (clear {clear})"
        if self.per_kmh:
            text += f" {self.per_kmh:+g}/kmh from {self.ref_kmh:g}"
        if self.median_of > 1:
            text += f" median of {self.median_of}"
        return text


@dataclass(frozen=True)
class Gate:
    """Context a rule needs: belt speed or cadence bounds; unknown speed fails a speed bound."""

    min_speed_kmh: Optional[float] = None
    max_speed_kmh: Optional[float] = None
    min_cadence_spm: Optional[float] = None
    max_cadence_spm: Optional[float] = None

    def describe(self) -> str:
        parts = []
        for label, value in (
            ("speed >=", self.min_speed_kmh),
            ("speed <=", self.max_speed_kmh),
            ("cadence >=", self.min_cadence_spm),
            ("cadence <=", self.max_cadence_spm),
        ):
            if value is not None:
                parts.append(f"{label} {value:g}")
        return ", ".join(parts)


@dataclass(frozen=True)
class CueRule:
    """One coaching rule: when the fault holds, which words to say, and how often."""

    id: str
    conditions: tuple[Condition, ...]
    match: Match
    views: tuple[View, ...]
    priority: int
    persistence_k: int
    persistence_n: int
    phrases: tuple[str, ...]
    praise: tuple[str, ...]
    why: str
    enabled: bool = True
    cooldown_s: Optional[float] = None  # None: engine.cooldown_s
    gate: Gate = Gate()
    min_confidence: float = 0.5
    source: str = ""

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.metric for c in self.conditions))


@dataclass(frozen=True)
class CuePack:
    """The merged rules of every configured pack, after engine.enable/disable."""

    rules: tuple[CueRule, ...]
    sources: tuple[Path, ...] = ()

    def rule(self, cue_id: str) -> CueRule:
        for rule in self.rules:
            if rule.id == cue_id:
                return rule
        raise KeyError(cue_id)

    @property
    def enabled(self) -> tuple[CueRule, ...]:
        return tuple(r for r in self.rules if r.enabled)


# --- parsing -------------------------------------------------------------------------

_CUE_KEYS = {
    "id",
    "enabled",
    "priority",
    "views",
    "match",
    "when",
    "only_when",
    "persistence",
    "cooldown_s",
    "phrases",
    "praise",
    "why",
    "min_confidence",
}
_CONDITION_KEYS = {
    "metric",
    "above",
    "below",
    "clear",
    "relative",
    "per_kmh",
    "ref_kmh",
    "median_of",
}
_GATE_KEYS = {"min_speed_kmh", "max_speed_kmh", "min_cadence_spm", "max_cadence_spm"}
_TOP_KEYS = {"pack", "defaults", "cues"}
_DEFAULT_KEYS = {"persistence", "min_confidence"}


class _Problems:
    """Collects one line per problem: file, cue id, field, what is wrong and what is allowed."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: list[str] = []

    def add(self, cue_id: Optional[str], field: str, message: str) -> None:
        where = f"cue {cue_id!r}: " if cue_id is not None else ""
        self.lines.append(f"cue pack error: {self.source}: {where}{field}: {message}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(
    problems: _Problems,
    cue_id: Optional[str],
    field: str,
    value: Any,
    low: float,
    high: float,
) -> Optional[float]:
    if not _is_number(value):
        problems.add(cue_id, field, f"{value!r} is not a number; allowed: {low:g} to {high:g}")
        return None
    if not low <= float(value) <= high:
        problems.add(cue_id, field, f"{value:g} is out of range; allowed: {low:g} to {high:g}")
        return None
    return float(value)


def _integer(
    problems: _Problems, cue_id: Optional[str], field: str, value: Any, low: int, high: int
) -> Optional[int]:
    if not isinstance(value, int) or isinstance(value, bool):
        problems.add(cue_id, field, f"{value!r} is not an integer; allowed: {low} to {high}")
        return None
    if not low <= value <= high:
        problems.add(cue_id, field, f"{value} is out of range; allowed: {low} to {high}")
        return None
    return value


def _persistence(
    problems: _Problems, cue_id: Optional[str], field: str, value: Any
) -> Optional[tuple[int, int]]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        problems.add(
            cue_id,
            field,
            f"{value!r} must be [k, n]: the fault in at least k of the last n strides",
        )
        return None
    k, n = value
    if not 1 <= n <= 60 or not 1 <= k <= n:
        problems.add(cue_id, field, f"[{k}, {n}] needs 1 <= k <= n <= 60")
        return None
    return k, n


def _phrases(
    problems: _Problems, cue_id: str, field: str, value: Any, required: bool = True
) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if value is None or value == []:
        if required:
            problems.add(cue_id, field, "missing: a cue needs at least one phrase to say")
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.add(cue_id, field, "must be a list of strings")
        return ()
    out = []
    for i, phrase in enumerate(value):
        text = " ".join(phrase.split())
        words = len(text.split())
        if not text:
            problems.add(cue_id, f"{field}[{i}]", "empty phrase")
        elif words > MAX_PHRASE_WORDS:
            problems.add(
                cue_id,
                f"{field}[{i}]",
                f"{words} words; a spoken cue has at most {MAX_PHRASE_WORDS}: {text!r}",
            )
        else:
            out.append(text)
    if len(set(out)) < len(out):
        problems.add(cue_id, field, "the same phrase is listed twice")
    return tuple(out)


def _condition(problems: _Problems, cue_id: str, field: str, raw: Any) -> Optional[Condition]:
    if not isinstance(raw, Mapping):
        problems.add(cue_id, field, "must be a table with metric, above or below, and clear")
        return None
    for key in sorted(set(raw) - _CONDITION_KEYS):
        problems.add(
            cue_id,
            f"{field}.{key}",
            f"unknown field; allowed: {', '.join(sorted(_CONDITION_KEYS))}",
        )
    metric = raw.get("metric")
    spec = METRICS.get(metric) if isinstance(metric, str) else None
    if spec is None:
        problems.add(
            cue_id,
            f"{field}.metric",
            f"unknown metric {metric!r}; known: {', '.join(METRICS)}",
        )
    relative = raw.get("relative", "absolute")
    if relative not in ("absolute", "baseline_ratio", "baseline_delta"):
        problems.add(
            cue_id,
            f"{field}.relative",
            f"{relative!r}; allowed: absolute, baseline_ratio, baseline_delta",
        )
        relative = None
    if ("above" in raw) == ("below" in raw):
        problems.add(cue_id, field, "needs exactly one of above = X or below = X")
        return None
    direction: Literal["above", "below"] = "above" if "above" in raw else "below"
    if "clear" not in raw:
        problems.add(
            cue_id,
            f"{field}.clear",
            "missing: the looser threshold at which the fault counts as fixed",
        )
    if spec is None or relative is None:
        return None
    if relative == "baseline_ratio":
        low, high = RATIO_RANGE
    elif relative == "baseline_delta":
        span = spec.high - spec.low
        low, high = -span, span
    else:
        low, high = spec.low, spec.high
    start = _number(problems, cue_id, f"{field}.{direction}", raw[direction], low, high)
    clear = (
        _number(problems, cue_id, f"{field}.clear", raw["clear"], low, high)
        if "clear" in raw
        else None
    )
    per_kmh = _number(problems, cue_id, f"{field}.per_kmh", raw.get("per_kmh", 0.0), -50, 50)
    ref_kmh = _number(problems, cue_id, f"{field}.ref_kmh", raw.get("ref_kmh", 10.0), 0, 40)
    median_of = _integer(problems, cue_id, f"{field}.median_of", raw.get("median_of", 1), 1, 30)
    if per_kmh and relative != "absolute":
        problems.add(cue_id, f"{field}.per_kmh", "only an absolute threshold moves with speed")
    if start is None or clear is None or per_kmh is None or ref_kmh is None or median_of is None:
        return None
    if direction == "above" and clear > start:
        problems.add(
            cue_id,
            f"{field}.clear",
            f"{clear:g} must be at or below above = {start:g} (hysteresis: looser to clear)",
        )
        return None
    if direction == "below" and clear < start:
        problems.add(
            cue_id,
            f"{field}.clear",
            f"{clear:g} must be at or above below = {start:g} (hysteresis: looser to clear)",
        )
        return None
    return Condition(
        metric=spec.name,
        direction=direction,
        start=start,
        clear=clear,
        relative=relative,
        per_kmh=per_kmh,
        ref_kmh=ref_kmh,
        median_of=median_of,
    )


def _gate(problems: _Problems, cue_id: str, raw: Any) -> Gate:
    if not isinstance(raw, Mapping):
        problems.add(cue_id, "only_when", "must be a table of " + ", ".join(sorted(_GATE_KEYS)))
        return Gate()
    for key in sorted(set(raw) - _GATE_KEYS):
        problems.add(
            cue_id, f"only_when.{key}", f"unknown field; allowed: {', '.join(sorted(_GATE_KEYS))}"
        )
    values: dict[str, Optional[float]] = {}
    for key in sorted(_GATE_KEYS & set(raw)):
        spec = METRICS["belt_speed_kmh" if "speed" in key else "cadence_spm"]
        values[key] = _number(problems, cue_id, f"only_when.{key}", raw[key], spec.low, spec.high)
    return Gate(**values)


def _rule(
    problems: _Problems,
    index: int,
    raw: Any,
    defaults: tuple[tuple[int, int], float],
    source: str,
) -> Optional[CueRule]:
    if not isinstance(raw, Mapping):
        problems.add(None, f"cues[{index}]", "must be a table ([[cues]])")
        return None
    cue_id = raw.get("id")
    if not isinstance(cue_id, str) or not cue_id.replace("_", "").isalnum() or not cue_id:
        problems.add(
            f"#{index + 1}", "id", f"{cue_id!r}: a cue needs an id of letters, digits and _"
        )
        return None
    if not cue_id.islower():
        problems.add(cue_id, "id", "ids are lower case (they name metrics and log lines)")
    for key in sorted(set(raw) - _CUE_KEYS):
        problems.add(cue_id, key, f"unknown field; allowed: {', '.join(sorted(_CUE_KEYS))}")
    before = len(problems.lines)

    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.add(cue_id, "enabled", f"{enabled!r}; allowed: true or false")
    priority = _integer(problems, cue_id, "priority", raw.get("priority"), 0, 1000)
    views_raw = raw.get("views")
    views: list[View] = []
    if not isinstance(views_raw, list) or not views_raw:
        problems.add(cue_id, "views", f"{views_raw!r}; a list of one or more of {', '.join(VIEWS)}")
    else:
        for view in views_raw:
            if view not in VIEWS:
                problems.add(cue_id, "views", f"unknown view {view!r}; allowed: {', '.join(VIEWS)}")
            else:
                views.append(view)
    match = raw.get("match", "all")
    if match not in ("all", "any"):
        problems.add(cue_id, "match", f"{match!r}; allowed: all, any")
    when = raw.get("when")
    conditions: list[Condition] = []
    if isinstance(when, Mapping):
        when = [when]
    if not isinstance(when, list) or not when:
        problems.add(cue_id, "when", "missing: at least one condition ([[cues.when]])")
    else:
        for i, item in enumerate(when):
            condition = _condition(problems, cue_id, f"when[{i}]", item)
            if condition is not None:
                conditions.append(condition)
    for condition in conditions:
        seen_in = set(METRICS[condition.metric].views) & set(views)
        if views and not seen_in:
            problems.add(
                cue_id,
                "views",
                f"{condition.metric} cannot be seen in any of {', '.join(views)}; "
                f"it is measured in {', '.join(METRICS[condition.metric].views)}",
            )
    gate = _gate(problems, cue_id, raw.get("only_when", {}))
    persistence = (
        _persistence(problems, cue_id, "persistence", raw["persistence"])
        if "persistence" in raw
        else defaults[0]
    )
    cooldown = (
        _number(problems, cue_id, "cooldown_s", raw["cooldown_s"], 0.0, 3600.0)
        if "cooldown_s" in raw
        else None
    )
    min_confidence = _number(
        problems, cue_id, "min_confidence", raw.get("min_confidence", defaults[1]), 0.0, 1.0
    )
    phrases = _phrases(problems, cue_id, "phrases", raw.get("phrases"))
    praise = _phrases(problems, cue_id, "praise", raw.get("praise"))
    why = raw.get("why")
    if not isinstance(why, str) or not why.strip():
        problems.add(cue_id, "why", "missing: one sentence for reports on why this matters")
    elif len(why) > 300:
        problems.add(cue_id, "why", f"{len(why)} characters; keep it under 300")
    if len(problems.lines) > before or priority is None or persistence is None:
        return None
    assert isinstance(why, str) and min_confidence is not None
    return CueRule(
        id=cue_id,
        conditions=tuple(conditions),
        match=match,
        views=tuple(views),
        priority=priority,
        persistence_k=persistence[0],
        persistence_n=persistence[1],
        phrases=phrases,
        praise=praise,
        why=" ".join(why.split()),
        enabled=bool(enabled),
        cooldown_s=cooldown,
        gate=gate,
        min_confidence=min_confidence,
        source=source,
    )


def parse_pack(data: Mapping[str, Any], source: str) -> tuple[list[CueRule], list[str]]:
    """Rules from one parsed TOML document, and one line per problem found."""
    problems = _Problems(source)
    for key in sorted(set(data) - _TOP_KEYS):
        problems.add(None, key, f"unknown table; allowed: {', '.join(sorted(_TOP_KEYS))}")
    about = data.get("pack", {})
    if not isinstance(about, Mapping):
        problems.add(None, "pack", "must be a table with name and description")
    else:
        for key in sorted(set(about) - {"name", "description"}):
            problems.add(None, f"pack.{key}", "unknown field; allowed: description, name")
    defaults_raw = data.get("defaults", {})
    persistence: Optional[tuple[int, int]] = (6, 10)
    min_confidence: Optional[float] = 0.5
    if not isinstance(defaults_raw, Mapping):
        problems.add(None, "defaults", "must be a table")
    else:
        for key in sorted(set(defaults_raw) - _DEFAULT_KEYS):
            problems.add(
                None,
                f"defaults.{key}",
                f"unknown field; allowed: {', '.join(sorted(_DEFAULT_KEYS))}",
            )
        if "persistence" in defaults_raw:
            persistence = _persistence(
                problems, None, "defaults.persistence", defaults_raw["persistence"]
            )
        if "min_confidence" in defaults_raw:
            min_confidence = _number(
                problems, None, "defaults.min_confidence", defaults_raw["min_confidence"], 0, 1
            )
    cues = data.get("cues")
    if not isinstance(cues, list) or not cues:
        problems.add(None, "cues", "no cues: a pack needs one or more [[cues]] tables")
        cues = []
    rules: list[CueRule] = []
    seen: set[str] = set()
    for index, raw in enumerate(cues):
        rule = _rule(problems, index, raw, (persistence or (6, 10), min_confidence or 0.5), source)
        if rule is None:
            continue
        if rule.id in seen:
            problems.add(rule.id, "id", "defined twice in this pack")
            continue
        seen.add(rule.id)
        rules.append(rule)
    return rules, problems.lines


def read_pack(path: Path) -> tuple[list[CueRule], list[str]]:
    """Rules from one pack file, and its problems (unreadable or invalid TOML is one)."""
    try:
        data = read_toml(path, "cue pack")
    except ConfigError as exc:
        return [], [str(exc)]
    return parse_pack(data, str(path))


def validate_file(path: Path) -> list[str]:
    """Every problem in one pack file; empty when it is valid."""
    return read_pack(path)[1]


def pack_dirs() -> list[Path]:
    """Where packs named without a path are looked for: /etc first (a gym's own edits win)."""
    dirs = [SYSTEM_PACK_DIR]
    with contextlib.suppress(FileNotFoundError):
        dirs.append(data_dir("cues"))
    return dirs


def find_pack(name: str, search: Sequence[Path]) -> Path:
    """A pack by name (default -> cues/default.toml) or by path."""
    if "/" in name or name.endswith(".toml"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(f"cue pack error: engine.packs: {name}: no such file")
        return path
    for folder in search:
        candidate = folder / f"{name}.toml"
        if candidate.is_file():
            return candidate
    available = sorted(
        {p.stem for folder in search if folder.is_dir() for p in folder.glob("*.toml")}
    )
    raise ConfigError(
        f"cue pack error: engine.packs: no pack named {name!r} in "
        f"{', '.join(str(d) for d in search)}; available: {', '.join(available) or 'none'}"
    )


def load_packs(settings: EngineSettings, search: Optional[Iterable[Path]] = None) -> CuePack:
    """Load engine.packs in order (a later pack's cue replaces one with the same id), then
    apply engine.enable/disable. Raises ConfigError listing every problem, one per line."""
    folders = list(search) if search is not None else pack_dirs()
    problems: list[str] = []
    merged: dict[str, CueRule] = {}
    sources: list[Path] = []
    if not settings.packs:
        raise ConfigError("cue pack error: engine.packs is empty; name at least one, e.g. default")
    for name in settings.packs:
        path = find_pack(name, folders)
        rules, found = read_pack(path)
        problems.extend(found)
        sources.append(path)
        for rule in rules:
            merged[rule.id] = rule
    for key, ids in (("engine.enable", settings.enable), ("engine.disable", settings.disable)):
        for cue_id in ids:
            if cue_id not in merged and not problems:
                problems.append(
                    f"cue pack error: {key}: unknown cue id {cue_id!r}; known: {', '.join(merged)}"
                )
    both = sorted(set(settings.enable) & set(settings.disable))
    if both:
        problems.append(f"cue pack error: engine.enable and engine.disable both name {both}")
    if problems:
        raise ConfigError("\n".join(problems))
    for cue_id, rule in list(merged.items()):
        if cue_id in settings.enable:
            merged[cue_id] = replace(rule, enabled=True)
        elif cue_id in settings.disable:
            merged[cue_id] = replace(rule, enabled=False)
    rules = sorted(merged.values(), key=lambda r: (-r.priority, r.id))
    return CuePack(rules=tuple(rules), sources=tuple(sources))
