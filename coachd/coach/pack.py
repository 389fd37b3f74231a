"""Cue packs: TOML files of coaching rules, validated by pydantic models into frozen rules.

A pack is data, not code: a gym or a coach changes thresholds and wording without touching
Python. Every problem in every file is reported at once, one line each, naming the file, the
cue id and the field, so `coachd cues validate` and a refused `coachd run` say what to fix.
What a metric is and which thresholds it may take come from the catalogue (coachd/catalog.py).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from coachd.catalog import METRICS
from coachd.errors import ConfigError
from coachd.messages import VIEWS, View
from coachd.resources import data_dir
from coachd.settings import EngineSettings, describe_field
from coachd.textfile import read_toml

SYSTEM_PACK_DIR = Path("/etc/coachd/cues")
MAX_PHRASE_WORDS = 12  # a cue is said between two breaths
MAX_WHY_CHARS = 300
# A baseline_ratio threshold is a factor of the runner's own value.
RATIO_RANGE = (0.3, 3.0)
_ID = re.compile(r"[A-Za-z0-9_]+")

Relative = Literal["absolute", "baseline_ratio", "baseline_delta"]
Match = Literal["all", "any"]


class _Table(BaseModel):
    """A TOML table: strict types (no "yes" for true), no unknown keys, frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _persistence(value: Any) -> tuple[int, int]:
    if not (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ValueError(f"{value!r} must be [k, n]: the fault in at least k of the last n strides")
    k, n = value
    if not 1 <= n <= 60 or not 1 <= k <= n:
        raise ValueError(f"[{k}, {n}] needs 1 <= k <= n <= 60")
    return k, n


def _phrase(text: str) -> str:
    text = " ".join(text.split())
    words = len(text.split())
    if not text:
        raise ValueError("empty phrase")
    if words > MAX_PHRASE_WORDS:
        raise ValueError(f"{words} words; a spoken cue has at most {MAX_PHRASE_WORDS}: {text!r}")
    return text


def _not_empty(message: str) -> AfterValidator:
    """A list that must hold something: `message` says what when it is missing or empty."""

    def check(items: list[Any]) -> list[Any]:
        if not items:
            raise ValueError(message)
        return items

    return AfterValidator(check)


_SOME_PHRASE = _not_empty("missing: a cue needs at least one phrase to say")
Persistence = Annotated[tuple[int, int], BeforeValidator(_persistence)]
Phrase = Annotated[str, AfterValidator(_phrase)]


class Condition(_Table):
    """One metric compared with a start threshold and a looser clear threshold (hysteresis).

    `above`/`below` (the start) and `clear` are in the metric's unit (absolute), a factor of
    the runner's baseline (baseline_ratio) or an offset from it (baseline_delta). `per_kmh`
    moves an absolute threshold with belt speed, from `ref_kmh`, when the speed is known.
    `median_of` compares the median of that many recent strides, for metrics that are noisy
    per step (cadence at 30 fps is quantised to whole frames, with the odd missed contact).
    """

    # Validated in this order: each threshold's range depends on the metric and `relative`.
    metric: str
    relative: Relative = "absolute"
    above: Optional[float] = None
    below: Optional[float] = None
    clear: float = Field(description="the looser threshold at which the fault counts as fixed")
    per_kmh: float = Field(0.0, ge=-50.0, le=50.0)
    ref_kmh: float = Field(10.0, ge=0.0, le=40.0)
    median_of: int = Field(1, ge=1, le=30)

    @field_validator("metric")
    @classmethod
    def _catalogued(cls, metric: str) -> str:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
        return metric

    @field_validator("above", "below", "clear")
    @classmethod
    def _plausible(cls, value: Optional[float], info: ValidationInfo) -> Optional[float]:
        metric, relative = info.data.get("metric"), info.data.get("relative")
        if value is None or metric is None or relative is None:
            return value
        low, high = METRICS[metric].plausible
        if relative == "baseline_ratio":
            low, high = RATIO_RANGE
        elif relative == "baseline_delta":
            low, high = low - high, high - low
        if not low <= value <= high:
            raise ValueError(f"{value:g} is out of range; allowed: {low:g} to {high:g}")
        if info.field_name == "clear":
            _looser(value, info.data.get("above"), info.data.get("below"))
        return value

    @field_validator("per_kmh")
    @classmethod
    def _absolute_only(cls, per_kmh: float, info: ValidationInfo) -> float:
        if per_kmh and info.data.get("relative") not in (None, "absolute"):
            raise ValueError("only an absolute threshold moves with speed")
        return per_kmh

    @model_validator(mode="after")
    def _one_start(self) -> Condition:
        if (self.above is None) == (self.below is None):
            raise ValueError("needs exactly one of above = X or below = X")
        return self

    @property
    def direction(self) -> Literal["above", "below"]:
        return "above" if self.above is not None else "below"

    @property
    def start(self) -> float:
        start = self.above if self.above is not None else self.below
        assert start is not None  # _one_start
        return start

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


def _looser(clear: float, above: Optional[float], below: Optional[float]) -> None:
    """Hysteresis: the clear threshold lies on the fault's side of the start threshold."""
    if above is not None and below is None and clear > above:
        raise ValueError(
            f"{clear:g} must be at or below above = {above:g} (hysteresis: looser to clear)"
        )
    if below is not None and above is None and clear < below:
        raise ValueError(
            f"{clear:g} must be at or above below = {below:g} (hysteresis: looser to clear)"
        )


_SPEED = METRICS["belt_speed_kmh"].plausible
_CADENCE = METRICS["cadence_spm"].plausible


class Gate(_Table):
    """Context a rule needs: belt speed or cadence bounds; unknown speed fails a speed bound."""

    min_speed_kmh: Optional[float] = Field(None, ge=_SPEED[0], le=_SPEED[1])
    max_speed_kmh: Optional[float] = Field(None, ge=_SPEED[0], le=_SPEED[1])
    min_cadence_spm: Optional[float] = Field(None, ge=_CADENCE[0], le=_CADENCE[1])
    max_cadence_spm: Optional[float] = Field(None, ge=_CADENCE[0], le=_CADENCE[1])

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


class CueRule(_Table):
    """One coaching rule ([[cues]]): when the fault holds, which words to say, how often."""

    # Validated in this order: the views are checked against the conditions' metrics.
    id: str = Field(description="lower case letters, digits and _")
    enabled: bool = True
    priority: int = Field(ge=0, le=1000, description="higher is said first")
    when: Annotated[
        list[Condition], _not_empty("missing: at least one condition ([[cues.when]])")
    ] = Field(default_factory=list, validate_default=True)
    views: list[View] = Field(default_factory=list, validate_default=True)
    match: Match = "all"
    only_when: Gate = Field(default_factory=Gate)
    persistence: Optional[Persistence] = None  # None: the pack's [defaults]
    cooldown_s: Optional[float] = Field(None, ge=0.0, le=3600.0)  # None: engine.cooldown_s
    own_min_confidence: Optional[float] = Field(None, alias="min_confidence", ge=0.0, le=1.0)
    phrases: Annotated[list[Phrase], _SOME_PHRASE] = Field(
        default_factory=list, validate_default=True
    )
    praise: Annotated[list[Phrase], _SOME_PHRASE] = Field(
        default_factory=list, validate_default=True
    )
    why: str = Field("", validate_default=True)
    _source: str = PrivateAttr("")

    @field_validator("id")
    @classmethod
    def _plain_id(cls, cue_id: str) -> str:
        if not _ID.fullmatch(cue_id):
            raise ValueError(f"{cue_id!r}: a cue needs an id of letters, digits and _")
        if not cue_id.islower():
            raise ValueError("ids are lower case (they name metrics and log lines)")
        return cue_id

    @field_validator("when", mode="before")
    @classmethod
    def _one_or_more(cls, when: Any) -> Any:
        return [when] if isinstance(when, Mapping) else when

    @field_validator("views", mode="before")
    @classmethod
    def _known_views(cls, views: Any) -> Any:
        if not isinstance(views, list) or not views:
            raise ValueError(f"{views!r}; a list of one or more of {', '.join(VIEWS)}")
        for view in views:
            if view not in VIEWS:
                raise ValueError(f"unknown view {view!r}; allowed: {', '.join(VIEWS)}")
        return views

    @field_validator("views")
    @classmethod
    def _can_see(cls, views: list[View], info: ValidationInfo) -> list[View]:
        for condition in info.data.get("when", []):
            seen_by = METRICS[condition.metric].views
            if not set(seen_by) & set(views):
                raise ValueError(
                    f"{condition.metric} cannot be seen in any of {', '.join(views)}; "
                    f"it is measured in {', '.join(seen_by)}"
                )
        return views

    @field_validator("phrases", "praise", mode="before")
    @classmethod
    def _listed(cls, phrases: Any) -> Any:
        return [phrases] if isinstance(phrases, str) else phrases

    @field_validator("phrases", "praise")
    @classmethod
    def _distinct(cls, phrases: list[str]) -> list[str]:
        if len(set(phrases)) < len(phrases):
            raise ValueError("the same phrase is listed twice")
        return phrases

    @field_validator("why")
    @classmethod
    def _one_sentence(cls, why: str) -> str:
        if not why.strip():
            raise ValueError("missing: one sentence for reports on why this matters")
        if len(why) > MAX_WHY_CHARS:
            raise ValueError(f"{len(why)} characters; keep it under {MAX_WHY_CHARS}")
        return " ".join(why.split())

    @property
    def source(self) -> str:
        """The pack file the rule was read from."""
        return self._source

    @property
    def persistence_k(self) -> int:
        return (self.persistence or Defaults().persistence)[0]

    @property
    def persistence_n(self) -> int:
        return (self.persistence or Defaults().persistence)[1]

    @property
    def conditions(self) -> list[Condition]:
        return self.when

    @property
    def gate(self) -> Gate:
        return self.only_when

    @property
    def min_confidence(self) -> float:
        """A metric the gait stage is less sure of is ignored (None: the pack's [defaults])."""
        if self.own_min_confidence is None:
            return Defaults().min_confidence
        return self.own_min_confidence

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.metric for c in self.conditions))

    def with_defaults(self, defaults: Defaults, source: str) -> CueRule:
        """This rule with the pack's [defaults] filled in, read from `source`."""
        rule = self.model_copy(
            update={
                "persistence": self.persistence or defaults.persistence,
                "own_min_confidence": (
                    defaults.min_confidence
                    if self.own_min_confidence is None
                    else self.own_min_confidence
                ),
            }
        )
        rule._source = source
        return rule


class Defaults(_Table):
    """[defaults]: what a cue that does not say otherwise gets."""

    persistence: Persistence = (6, 10)
    min_confidence: float = Field(0.5, ge=0.0, le=1.0)


class About(_Table):
    """[pack]: the pack's name and what it is for."""

    name: str = ""
    description: str = ""


class PackFile(_Table):
    """One cue pack file: [pack], [defaults] and one [[cues]] table per rule."""

    pack: About = Field(default_factory=About)
    defaults: Defaults = Field(default_factory=Defaults)
    cues: Annotated[
        list[CueRule], _not_empty("no cues: a pack needs one or more [[cues]] tables")
    ] = Field(default_factory=list, validate_default=True)


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


# --- reading files -------------------------------------------------------------------


def parse_pack(data: Mapping[str, Any], source: str) -> tuple[list[CueRule], list[str]]:
    """Rules from one parsed TOML document, and one line per problem found."""
    try:
        pack: Optional[PackFile] = PackFile.model_validate(data)
        problems = []
    except ValidationError as exc:
        pack, problems = None, [_line(error, data, source) for error in exc.errors()]
    cues = data.get("cues")
    ids = [c.get("id") for c in cues if isinstance(c, Mapping)] if isinstance(cues, list) else []
    for cue_id in sorted({i for i in ids if isinstance(i, str) and ids.count(i) > 1}):
        problems.append(f"cue pack error: {source}: cue {cue_id!r}: id: defined twice in this pack")
    if pack is None or problems:
        return [], problems
    return [rule.with_defaults(pack.defaults, source) for rule in pack.cues], []


def _line(error: ErrorDetails, data: Mapping[str, Any], source: str) -> str:
    """One problem as the settings word theirs: where, the value, what is wrong and allowed."""
    loc = error["loc"]
    cue = ""
    if len(loc) > 2 and loc[0] == "cues" and isinstance(loc[1], int):
        raw = data["cues"][loc[1]]
        cue_id = raw.get("id") if isinstance(raw, Mapping) else None
        label = cue_id if isinstance(cue_id, str) and _ID.fullmatch(cue_id) else f"#{loc[1] + 1}"
        cue, loc = f"cue {label!r}: ", loc[2:]
        model: Any = CueRule
    else:
        model = PackFile
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    kind, value = error["type"], error["input"]
    if kind == "value_error":
        message = str(error["ctx"]["error"])
    elif kind == "extra_forbidden":
        table = _table_at(model, loc[:-1])
        names = ", ".join(sorted(f.alias or name for name, f in table.model_fields.items()))
        message = f"unknown {'table' if table is PackFile else 'field'}; allowed: {names}"
    else:
        allowed = _allowed(model, loc)
        if kind == "missing":
            message = f"missing; allowed: {allowed}"
        else:
            message = f"{value!r} {_WRONG.get(kind, 'is not allowed')}; allowed: {allowed}"
    return f"cue pack error: {source}: {cue}{field}: {message}"


_WRONG = {
    "greater_than_equal": "is out of range",
    "less_than_equal": "is out of range",
    "float_type": "is not a number",
    "finite_number": "is not a number",
    "int_type": "is not an integer",
    "bool_type": "is not true or false",
    "string_type": "is not text",
    "list_type": "is not a list",
    "model_type": "is not a table",
    "dict_type": "is not a table",
}


def _table_at(model: type[BaseModel], loc: Sequence[Union[int, str]]) -> type[BaseModel]:
    """The model of the table at `loc` below `model` (list positions skipped)."""
    for part in loc:
        if isinstance(part, str):
            model = _inner(_field(model, part).annotation)
    return model


def _field(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    raise KeyError(key)


def _inner(annotation: Any) -> Any:
    """The table type inside list[X] or Optional[X]."""
    while get_origin(annotation) in (list, Union):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    return annotation


def _allowed(model: type[BaseModel], loc: Sequence[Union[int, str]]) -> str:
    keys = [p for p in loc if isinstance(p, str)]
    if not keys:
        return "a table"
    info = _field(_table_at(model, keys[:-1]), keys[-1])
    inner = _inner(info.annotation)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return "a table of " + ", ".join(f.alias or n for n, f in inner.model_fields.items())
    return describe_field(info)


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
            merged[cue_id] = rule.model_copy(update={"enabled": True})
        elif cue_id in settings.disable:
            merged[cue_id] = rule.model_copy(update={"enabled": False})
    rules = sorted(merged.values(), key=lambda r: (-r.priority, r.id))
    return CuePack(rules=tuple(rules), sources=tuple(sources))
