"""Fault state per rule: is the fault on, and has it really been fixed?

Each stride the rule can judge goes into a window; the fault starts when at least k of the
last n strides pass the start threshold. It clears only on sustained evidence: k of the last n
back past the looser clear threshold at every step for engine.clear_hold_s, with the median of
those steps past the clear threshold beyond the steps' own scatter. A cued fault earns praise
only when the metric really moved, so a borderline value wandering across the thresholds is
never praised.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Mapping, MutableSequence, Sequence
from dataclasses import dataclass
from typing import Literal, Optional

from coachd.catalog import METRICS, visible
from coachd.coach.baseline import Baseline
from coachd.coach.pack import Condition, CueRule
from coachd.messages import Stride
from coachd.robust import median_and_spread
from coachd.settings import EngineSettings

MARGINAL_HOLD_FACTOR = 3.0  # a fix barely past the clear threshold must hold this much longer
MOVED_GAPS = 1.0  # praise: the fixed median at least this many start-clear gaps better than before
EVIDENCE_Z = 2.0  # "beyond doubt": this many standard errors of the steps' own scatter
MEDIAN_ERROR = math.sqrt(math.pi / 2)  # a median's standard error over the mean's
ON_MEMORY_STEPS = 120  # "while the fault was on" means its last minute or so
FIX_MEMORY_STEPS = 240  # a fix run is judged on its newest steps at most this many
NO_HYSTERESIS_GAP = 0.02  # a rule whose clear equals its start: this share of the metric's range


@dataclass(frozen=True)
class Judgement:
    """One step as a rule sees it."""

    starts: bool  # passes the start threshold
    faulty: bool  # still past the clear threshold
    # Per condition: this step's raw value past the clear threshold, in start-clear gaps
    # (positive on the good side); None where the condition could not judge it.
    margins: tuple[Optional[float], ...]


@dataclass
class RuleState:
    """One rule's fault episode: its window of judged steps, whether it is on, the run of
    steps showing it fixed, and what the engine said about it."""

    window: deque[Judgement]
    recent: dict[int, deque[float]]  # per condition: values for its running median
    on_margins: dict[int, deque[float]]  # per condition: margins while the fault was on
    fix_margins: dict[int, deque[float]]  # per condition: margins since the fix began
    active: bool = False
    fix_since: Optional[float] = None  # first step of the unbroken run showing it fixed
    fix_steps: int = 0
    judged_t: float = -math.inf  # newest stride judged at all
    support_t: float = -math.inf  # newest stride showing the fault
    told: bool = False  # cued during this fault episode
    repeats: int = 0
    last_cued_t: float = -math.inf
    praise_due_t: Optional[float] = None  # a told fault really fixed: praise from then
    fixed_support_t: float = -math.inf  # newest stride showing it fixed
    last_phrase: Optional[str] = None
    last_praise: Optional[str] = None

    @classmethod
    def new(cls, rule: CueRule) -> RuleState:
        conditions = range(len(rule.conditions))
        return cls(
            window=deque(maxlen=rule.persistence_n),
            recent={i: deque(maxlen=c.median_of) for i, c in enumerate(rule.conditions)},
            on_margins={i: deque(maxlen=ON_MEMORY_STEPS) for i in conditions},
            fix_margins={i: deque(maxlen=FIX_MEMORY_STEPS) for i in conditions},
        )

    def forget_episode(self) -> None:
        """A break in context (pause, speed gate, drill): judge afresh, no praise owed."""
        self.window.clear()
        for values in self.recent.values():
            values.clear()
        for margins in self.on_margins.values():
            margins.clear()
        self.end_fix()
        self.active = False
        self.told = False
        self.repeats = 0
        self.praise_due_t = None

    def abandon_fix(self) -> None:
        """The run of fixed steps broke (or ended): what it saw was still the fault."""
        for index, margins in self.fix_margins.items():
            self.on_margins[index].extend(margins)
        self.end_fix()

    def end_fix(self) -> None:
        """Forget the current run of fixed steps."""
        for margins in self.fix_margins.values():
            margins.clear()
        self.fix_since = None
        self.fix_steps = 0

    @staticmethod
    def remember(into: Mapping[int, MutableSequence[float]], judgement: Judgement) -> None:
        for index, margin in enumerate(judgement.margins):
            if margin is not None:
                into[index].append(margin)


def median_and_error(values: Sequence[float]) -> tuple[float, float]:
    """The median of noisy steps and its standard error, from their robust spread (MAD)."""
    middle, spread = median_and_spread(values)
    return middle, MEDIAN_ERROR * spread / math.sqrt(len(values))


def usable(stride: Stride, metric: str, min_confidence: float) -> bool:
    """The stride has a finite value for the metric, seen from its view, confident enough."""
    value = stride.metrics.get(metric)
    return (
        value is not None
        and math.isfinite(value)
        and visible(metric, stride.view)
        and stride.confidence.get(metric, 1.0) >= min_confidence
    )


def judge(
    rule: CueRule,
    state: RuleState,
    stride: Stride,
    speed: Optional[float],
    baseline: Baseline,
) -> Optional[Judgement]:
    """How this step stands against the rule's thresholds, or None: cannot judge."""
    results: list[Optional[tuple[bool, bool]]] = []
    margins: list[Optional[float]] = []
    for index, condition in enumerate(rule.conditions):
        results.append(None)
        margins.append(None)
        if not usable(stride, condition.metric, rule.min_confidence):
            continue
        raw = stride.metrics[condition.metric]
        recent = state.recent[index]
        recent.append(raw)
        bounds = thresholds(condition, speed, baseline)
        if bounds is None or len(recent) < condition.median_of:
            continue
        value = statistics.median(recent)
        start, clear = bounds
        if condition.direction == "above":
            results[index] = (value > start, value > clear)
            margin = clear - raw
        else:
            results[index] = (value < start, value < clear)
            margin = raw - clear
        margins[index] = margin / hysteresis_gap(condition, start, clear)
    known = [r for r in results if r is not None]
    if not known or (rule.match == "all" and len(known) < len(results)):
        return None
    combine = all if rule.match == "all" else any
    return Judgement(combine(r[0] for r in known), combine(r[1] for r in known), tuple(margins))


def hysteresis_gap(condition: Condition, start: float, clear: float) -> float:
    """The hysteresis gap in the metric's unit: how far "fixed" is measured in."""
    low, high = METRICS[condition.metric].plausible
    return abs(start - clear) or NO_HYSTERESIS_GAP * (high - low)


def thresholds(
    condition: Condition, speed: Optional[float], baseline: Baseline
) -> Optional[tuple[float, float]]:
    """(start, clear) for this condition now: absolute (shifted with speed), or from the
    runner's baseline; None while the baseline is not known yet."""
    if condition.relative == "absolute":
        shift = 0.0
        if condition.per_kmh and speed is not None:
            shift = condition.per_kmh * (speed - condition.ref_kmh)
        return condition.start + shift, condition.clear + shift
    base = baseline.get(condition.metric)
    if base is None:
        return None
    if condition.relative == "baseline_ratio":
        return base * condition.start, base * condition.clear
    return base + condition.start, base + condition.clear


def advance(
    rule: CueRule, state: RuleState, judgement: Judgement, t: float, settings: EngineSettings
) -> Optional[Literal["started", "cleared"]]:
    """Take one judged step: whether the fault started or cleared with it."""
    outcome: Optional[Literal["started", "cleared"]] = None
    state.window.append(judgement)
    state.judged_t = t
    if state.active:
        if judgement.faulty:
            state.support_t = t
        if sum(1 for j in state.window if not j.faulty) < rule.persistence_k:
            state.abandon_fix()  # one step short of fixed and the clock starts again
            state.remember(state.on_margins, judgement)
        else:
            if state.fix_since is None:
                state.fix_since = t
            state.fix_steps += 1
            state.remember(state.fix_margins, judgement)
            # Cleared on a good step only: not while the window still shows a fix that
            # the newest steps are already undoing.
            if not judgement.faulty and _fix_held(rule, state, t, settings):
                _clear(rule, state, t, settings)
                outcome = "cleared"
    else:
        if judgement.starts:
            state.support_t = t
        if sum(1 for j in state.window if j.starts) >= rule.persistence_k:
            state.active = True
            state.praise_due_t = None  # back before the praise: no praise
            for margins in state.on_margins.values():
                margins.clear()
            for onset in state.window:
                state.remember(state.on_margins, onset)
            outcome = "started"
    if not state.active:
        state.fixed_support_t = t
    return outcome


def _fix_held(rule: CueRule, state: RuleState, t: float, settings: EngineSettings) -> bool:
    """The fix has held long enough to believe: after engine.clear_hold_s when the fixed
    steps are praise_margin past the clear threshold, or after MARGINAL_HOLD_FACTOR
    times that when they are past it at all (beyond doubt either way), so noise around a
    borderline value does not clear the fault."""
    if state.fix_since is None or state.fix_steps < rule.persistence_n:
        return False
    held_s = t - state.fix_since
    if held_s >= settings.clear_hold_s * MARGINAL_HOLD_FACTOR:
        return fix_verdict(rule, state, 0.0)[0]
    if held_s >= settings.clear_hold_s:
        return fix_verdict(rule, state, settings.praise_margin)[0]
    return False


def _clear(rule: CueRule, state: RuleState, t: float, settings: EngineSettings) -> None:
    """The fix held: the fault is off; praise is owed if it was cued and really moved."""
    state.active = False
    state.window.clear()  # a fresh onset needs fresh evidence
    if state.told and fix_verdict(rule, state, settings.praise_margin)[1]:
        fix_since = t if state.fix_since is None else state.fix_since
        state.praise_due_t = max(fix_since + settings.praise_hold_s, t)
    state.end_fix()


def fix_verdict(rule: CueRule, state: RuleState, past: float) -> tuple[bool, bool]:
    """(fixed: the median of the steps since the fix began is `past` start-clear gaps past
    the clear threshold; moved: also MOVED_GAPS better than the median while the fault
    was on), each by more than the steps' own scatter could make it (EVIDENCE_Z
    standard errors), so a borderline runner wandering across the thresholds is neither."""
    fixed: list[bool] = []
    moved: list[bool] = []
    involved: list[bool] = []  # on the fault's side of the clear threshold while it was on
    for index, margins in state.fix_margins.items():
        if not margins:
            continue
        now, now_error = median_and_error(margins)
        fixed.append(now - EVIDENCE_Z * now_error >= past)
        before = state.on_margins[index]
        if not before:
            involved.append(False)
            moved.append(False)
            continue
        was, was_error = median_and_error(before)
        involved.append(was < 0.0)
        doubt = EVIDENCE_Z * math.hypot(now_error, was_error)
        moved.append(fixed[-1] and now - was - doubt >= MOVED_GAPS)
    if rule.match == "all":  # one condition back in range clears the fault
        return any(fixed), any(moved)
    # "any": every condition had to clear, but only those that showed the fault have
    # something to prove (a shoulder roll that was always fine need not "move").
    judged = [i for i, showed in enumerate(involved) if showed] or list(range(len(fixed)))
    if not judged:
        return False, False
    return all(fixed[i] for i in judged), all(fixed[i] for i in judged) and any(
        moved[i] for i in judged
    )
