"""The cue engine: stride metrics in, at most one short spoken cue at a time out.

Per rule, each stride the rule can judge goes into a window; the fault starts when at least k
of the last n strides pass the start threshold. It clears only on sustained evidence: k of the
last n back past the looser clear threshold at every step for engine.clear_hold_s, with the
median of those steps past the clear threshold beyond the steps' own scatter. Among faults
that are on, the highest priority is said, subject to a quiet warm-up, a global gap, a per-cue
cooldown, a cap per minute and fading. A cued fault earns one praise only when the metric
really moved: the fixed steps' median well past the clear threshold and well better than while
the fault was on, so a borderline value wandering across the thresholds is never praised.
Time comes from the caller's `now` only.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter, deque
from collections.abc import Mapping, MutableSequence, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Optional

from coachd.catalog import METRICS, visible
from coachd.coach.baseline import Baseline
from coachd.coach.pack import Condition, CuePack, CueRule
from coachd.coach.programs import (
    CadenceBlocks,
    LoadWatch,
    Metronome,
    ProgramLine,
    RetroDrills,
    RetroProgress,
    weekly_load,
)
from coachd.messages import Cue, GaitUpdate, Stride, View
from coachd.robust import median_and_spread
from coachd.settings import EngineSettings

NOT_RUNNING_RESET_S = 3.0  # a pause this long (walking, standing, out of view) starts afresh
MAX_STEP_S = 1.0  # running time added per update at most (a stalled pipeline is not running)
SESSION_FADE_WEIGHT = 0.25  # running time with faults fades feedback at a quarter the rate
REPEAT_GROWTH = 1.5  # each repeat of a cue the runner has not fixed waits this much longer
MAX_REPEAT_STEPS = 3
PRAISE_MAX_DELAY_S = 20.0  # praise later than this after the fix is no longer about it
MARGINAL_HOLD_FACTOR = 3.0  # a fix barely past the clear threshold must hold this much longer
MOVED_GAPS = 1.0  # praise: the fixed median at least this many start-clear gaps better than before
EVIDENCE_Z = 2.0  # "beyond doubt": this many standard errors of the steps' own scatter
MEDIAN_ERROR = math.sqrt(math.pi / 2)  # a median's standard error over the mean's
ON_MEMORY_STEPS = 120  # "while the fault was on" means its last minute or so
FIX_MEMORY_STEPS = 240  # a fix run is judged on its newest steps at most this many
NO_HYSTERESIS_GAP = 0.02  # a rule whose clear equals its start: this share of the metric's range


@dataclass
class EngineCounters:
    """What the engine has said and dropped this session (for health metrics and reports)."""

    corrections: Counter[str] = field(default_factory=Counter)
    praise: Counter[str] = field(default_factory=Counter)
    program: Counter[str] = field(default_factory=Counter)
    dropped_stale: Counter[str] = field(default_factory=Counter)
    started: Counter[str] = field(default_factory=Counter)  # fault onsets, by cue id
    cleared: Counter[str] = field(default_factory=Counter)  # fault clears, by cue id

    @property
    def emitted(self) -> Counter[str]:
        """Every cue said, by cue id (corrections, praise and program together)."""
        return self.corrections + self.praise + self.program

    @property
    def dropped_stale_total(self) -> int:
        return sum(self.dropped_stale.values())


@dataclass(frozen=True)
class _Judgement:
    """One step as a rule sees it."""

    starts: bool  # passes the start threshold
    faulty: bool  # still past the clear threshold
    # Per condition: this step's raw value past the clear threshold, in start-clear gaps
    # (positive on the good side); None where the condition could not judge it.
    margins: tuple[Optional[float], ...]


@dataclass
class _RuleState:
    window: deque[_Judgement]
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
    def new(cls, rule: CueRule) -> _RuleState:
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
    def remember(into: Mapping[int, MutableSequence[float]], judgement: _Judgement) -> None:
        for index, margin in enumerate(judgement.margins):
            if margin is not None:
                into[index].append(margin)


def median_and_error(values: Sequence[float]) -> tuple[float, float]:
    """The median of noisy steps and its standard error, from their robust spread (MAD)."""
    middle, spread = median_and_spread(values)
    return middle, MEDIAN_ERROR * spread / math.sqrt(len(values))


class CueEngine:
    """Turns GaitUpdates into Cues. One instance per running process; `reset` per session."""

    def __init__(self, settings: EngineSettings, pack: CuePack, seed: int = 0) -> None:
        self.settings = settings
        self.pack = pack
        self._seed = seed
        self.reset()

    # --- session lifecycle -----------------------------------------------------------

    def reset(
        self,
        *,
        history: Optional[Sequence[tuple[date, float]]] = None,
        today: Optional[date] = None,
        retro: Optional[RetroProgress] = None,
    ) -> None:
        """Start a new session: forget the baseline, windows, counters and timers.

        `history` (date, minutes) of past sessions with `today` turns on the weekly-load rule;
        `retro` is the runner's stored retro progress (for engine.program = "retro")."""
        self._rng = random.Random(self._seed)
        self.baseline = Baseline()
        self.counters = EngineCounters()
        self._states = {rule.id: _RuleState.new(rule) for rule in self.pack.rules}
        self._last_now: Optional[float] = None
        self._last_step = 0.0
        self.running_s = 0.0
        self._good_form_s = 0.0
        self._post_warmup_s = 0.0
        self._warm = False
        self._not_running_since: Optional[float] = None
        self._last_spoken_t = -math.inf
        self._spoken: deque[float] = deque()
        self._recent_cadence: deque[float] = deque(maxlen=8)
        self._recent_speed: deque[float] = deque(maxlen=8)
        warmup = self.settings.warmup_s
        self._retro = (
            RetroDrills(retro or RetroProgress(), first_at_s=warmup + 60.0)
            if self.settings.program == "retro"
            else None
        )
        self._cadence = (
            CadenceBlocks(
                first_at_s=warmup,
                increase=self.settings.cadence_increase_pct / 100.0,
                metronome=self.settings.metronome,
            )
            if self.settings.program == "cadence"
            else None
        )
        load = weekly_load(history, today) if history is not None and today is not None else None
        self._load = LoadWatch(load)

    def reload(self, settings: EngineSettings, pack: CuePack) -> None:
        """New settings and rules mid-session: keep the baseline and what carries over."""
        program_changed = settings.program != self.settings.program
        self.settings = settings
        self.pack = pack
        self._states = {
            rule.id: self._states.get(rule.id) or _RuleState.new(rule) for rule in pack.rules
        }
        for rule in pack.rules:  # a changed persistence or averaging needs fresh windows
            state = self._states[rule.id]
            if state.window.maxlen != rule.persistence_n or len(state.recent) != len(
                rule.conditions
            ):
                self._states[rule.id] = _RuleState.new(rule)
        if program_changed:
            retro = self._retro.progress if self._retro else None
            if settings.program == "retro":
                self._retro = RetroDrills(retro or RetroProgress(), self.running_s + 60.0)
            else:
                self._retro = None
            self._cadence = (
                CadenceBlocks(
                    self.running_s,
                    settings.cadence_increase_pct / 100.0,
                    settings.metronome,
                )
                if settings.program == "cadence"
                else None
            )

    def report_problem(self, now: float) -> list[Cue]:
        """The runner reports pain or lost balance: stop a retro drill at once."""
        if self._retro is None:
            return []
        return [self._program_cue(line, now) for line in self._retro.report_problem(now)]

    def retro_result(self) -> Optional[RetroProgress]:
        """The retro progress to store after this session (None outside the retro program)."""
        return self._retro.result() if self._retro else None

    def metronome(self) -> Optional[Metronome]:
        """The click schedule while a cadence block with the metronome is on."""
        return self._cadence.metronome if self._cadence else None

    def faults_on(self) -> list[str]:
        """Ids of the faults on now (started, not yet cleared), highest priority first."""
        return [r.id for r, s in sorted(self._judged(), key=lambda rs: -rs[0].priority) if s.active]

    def all_phrases(self) -> list[str]:
        """Every text this engine can say, for the speech stage to pre-render."""
        phrases: list[str] = []
        for rule in self.pack.enabled:
            phrases += [*rule.phrases, *rule.praise]
        phrases += RetroDrills.phrases() + CadenceBlocks.phrases() + LoadWatch.phrases()
        return list(dict.fromkeys(phrases))

    # --- the per-frame entry point ------------------------------------------------------

    def update(self, update: GaitUpdate, now: float) -> list[Cue]:
        """Take one gait update at time `now`; return at most one correction or praise (plus
        any program cue that is due)."""
        running = update.activity == "running" and update.view is not None
        self._advance_clock(now, running)
        out = [self._program_cue(line, now) for line in self._program_lines(now, running)]
        quiet = self._retro is not None and self._retro.quiet(now)
        if running and not quiet:
            for stride in sorted(update.strides, key=lambda s: s.t):
                self._observe(stride)
            if not self._warm and self.running_s >= self.settings.warmup_s:
                self._warm = True
                self.baseline.finish_warmup(self.settings.warmup_s)
        elif quiet:
            for state in self._states.values():
                state.forget_episode()
        if self._warm and running and not quiet:
            if not any(s.active for r, s in self._judged()):
                self._good_form_s += self._last_step
            cue = self._choose(update.view, now)
            if cue is not None:
                out.append(cue)
        return out

    # --- time --------------------------------------------------------------------------

    def _advance_clock(self, now: float, running: bool) -> None:
        step = 0.0 if self._last_now is None else max(0.0, min(MAX_STEP_S, now - self._last_now))
        self._last_now = now
        self._last_step = step if running else 0.0
        if running:
            self.running_s += step
            if self._warm:
                self._post_warmup_s += step
            self._not_running_since = None
            return
        if self._not_running_since is None:
            self._not_running_since = now
        elif now - self._not_running_since >= NOT_RUNNING_RESET_S:
            for state in self._states.values():
                state.forget_episode()

    def fade_factor(self) -> float:
        """How much longer gaps and cooldowns are now: grows with good form held, and more
        slowly with session time, up to engine.fade_max_factor."""
        if not self.settings.fade:
            return 1.0
        progress = self._good_form_s + SESSION_FADE_WEIGHT * self._post_warmup_s
        share = min(1.0, progress / self.settings.fade_full_s)
        return 1.0 + (self.settings.fade_max_factor - 1.0) * share

    def current_gap_s(self) -> float:
        return self.settings.min_gap_s * self.fade_factor()

    def cooldown_s(self, rule: CueRule) -> float:
        base = self.settings.cooldown_s if rule.cooldown_s is None else rule.cooldown_s
        state = self._states[rule.id]
        repeats = min(max(state.repeats - 1, 0), MAX_REPEAT_STEPS) if self.settings.fade else 0
        return base * self.fade_factor() * REPEAT_GROWTH**repeats

    # --- judging strides -------------------------------------------------------------

    def _judged(self) -> list[tuple[CueRule, _RuleState]]:
        return [(r, self._states[r.id]) for r in self.pack.enabled]

    def _observe(self, stride: Stride) -> None:
        for metric, value in stride.metrics.items():
            if metric in METRICS and self._usable(stride, metric, 0.5):
                self.baseline.add(metric, value, self.running_s)
        for metric, recent in (
            ("cadence_spm", self._recent_cadence),
            ("belt_speed_kmh", self._recent_speed),
        ):
            if self._usable(stride, metric, 0.5):
                recent.append(stride.metrics[metric])
        speed = self._recent_median(self._recent_speed)  # one step's speed is noisy
        for rule, state in self._judged():
            if stride.view not in rule.views:
                continue
            if not self._gate_open(rule, speed):
                state.forget_episode()  # out of the rule's context (speed): not a fix
                continue
            judgement = self._judge(rule, state, stride, speed)
            if judgement is not None:
                self._step(rule, state, judgement, stride.t)

    def _usable(self, stride: Stride, metric: str, min_confidence: float) -> bool:
        value = stride.metrics.get(metric)
        return (
            value is not None
            and math.isfinite(value)
            and visible(metric, stride.view)
            and stride.confidence.get(metric, 1.0) >= min_confidence
        )

    def _judge(
        self, rule: CueRule, state: _RuleState, stride: Stride, speed: Optional[float]
    ) -> Optional[_Judgement]:
        """How this step stands against the rule's thresholds, or None: cannot judge."""
        results: list[Optional[tuple[bool, bool]]] = []
        margins: list[Optional[float]] = []
        for index, condition in enumerate(rule.conditions):
            results.append(None)
            margins.append(None)
            if not self._usable(stride, condition.metric, rule.min_confidence):
                continue
            raw = stride.metrics[condition.metric]
            recent = state.recent[index]
            recent.append(raw)
            thresholds = self._thresholds(condition, speed)
            if thresholds is None or len(recent) < condition.median_of:
                continue
            value = statistics.median(recent)
            start, clear = thresholds
            if condition.direction == "above":
                results[index] = (value > start, value > clear)
                margin = clear - raw
            else:
                results[index] = (value < start, value < clear)
                margin = raw - clear
            margins[index] = margin / self._gap(condition, start, clear)
        known = [r for r in results if r is not None]
        if not known or (rule.match == "all" and len(known) < len(results)):
            return None
        combine = all if rule.match == "all" else any
        return _Judgement(
            combine(r[0] for r in known), combine(r[1] for r in known), tuple(margins)
        )

    @staticmethod
    def _gap(condition: Condition, start: float, clear: float) -> float:
        """The hysteresis gap in the metric's unit: how far "fixed" is measured in."""
        low, high = METRICS[condition.metric].plausible
        return abs(start - clear) or NO_HYSTERESIS_GAP * (high - low)

    def _gate_open(self, rule: CueRule, speed: Optional[float]) -> bool:
        gate = rule.gate
        if gate.min_speed_kmh is not None or gate.max_speed_kmh is not None:
            if speed is None:
                return False  # speed unknown (no runner height): a speed-bound rule stays off
            if gate.min_speed_kmh is not None and speed < gate.min_speed_kmh:
                return False
            if gate.max_speed_kmh is not None and speed > gate.max_speed_kmh:
                return False
        if gate.min_cadence_spm is not None or gate.max_cadence_spm is not None:
            cadence = self._recent_median(self._recent_cadence)
            if cadence is None:
                return False
            if gate.min_cadence_spm is not None and cadence < gate.min_cadence_spm:
                return False
            if gate.max_cadence_spm is not None and cadence > gate.max_cadence_spm:
                return False
        return True

    def _thresholds(
        self, condition: Condition, speed: Optional[float]
    ) -> Optional[tuple[float, float]]:
        if condition.relative == "absolute":
            shift = 0.0
            if condition.per_kmh and speed is not None:
                shift = condition.per_kmh * (speed - condition.ref_kmh)
            return condition.start + shift, condition.clear + shift
        base = self.baseline.get(condition.metric)
        if base is None:
            return None
        if condition.relative == "baseline_ratio":
            return base * condition.start, base * condition.clear
        return base + condition.start, base + condition.clear

    def _step(self, rule: CueRule, state: _RuleState, judgement: _Judgement, t: float) -> None:
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
                if not judgement.faulty and self._fix_held(rule, state, t):
                    self._clear(rule, state, t)
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
                self.counters.started[rule.id] += 1
        if not state.active:
            state.fixed_support_t = t

    def _fix_held(self, rule: CueRule, state: _RuleState, t: float) -> bool:
        """The fix has held long enough to believe: after engine.clear_hold_s when the fixed
        steps are praise_margin past the clear threshold, or after MARGINAL_HOLD_FACTOR
        times that when they are past it at all (beyond doubt either way), so noise around a
        borderline value does not clear the fault."""
        if state.fix_since is None or state.fix_steps < rule.persistence_n:
            return False
        held_s = t - state.fix_since
        if held_s >= self.settings.clear_hold_s * MARGINAL_HOLD_FACTOR:
            return self._fix_verdict(rule, state, 0.0)[0]
        if held_s >= self.settings.clear_hold_s:
            return self._fix_verdict(rule, state, self.settings.praise_margin)[0]
        return False

    def _clear(self, rule: CueRule, state: _RuleState, t: float) -> None:
        """The fix held: the fault is off; praise is owed if it was cued and really moved."""
        state.active = False
        state.window.clear()  # a fresh onset needs fresh evidence
        if state.told and self._fix_verdict(rule, state, self.settings.praise_margin)[1]:
            fix_since = t if state.fix_since is None else state.fix_since
            state.praise_due_t = max(fix_since + self.settings.praise_hold_s, t)
        state.end_fix()
        self.counters.cleared[rule.id] += 1

    def _fix_verdict(self, rule: CueRule, state: _RuleState, past: float) -> tuple[bool, bool]:
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

    @staticmethod
    def _recent_median(values: deque[float]) -> Optional[float]:
        return statistics.median(values) if len(values) >= 4 else None

    # --- choosing what to say --------------------------------------------------------

    def _choose(self, view: Optional[View], now: float) -> Optional[Cue]:
        if self._cadence is not None and self._cadence.in_block():
            return None  # the block's own cues say one thing: the rhythm
        if now - self._last_spoken_t < self.current_gap_s():
            return None
        while self._spoken and now - self._spoken[0] >= 60.0:
            self._spoken.popleft()
        if len(self._spoken) >= self.settings.max_per_minute:
            return None
        candidates: list[tuple[tuple[int, int], CueRule, _RuleState]] = []
        for rule, state in self._judged():
            if not self._view_can_see(rule, view):
                continue
            if state.praise_due_t is not None and not state.active:
                if now >= state.praise_due_t:
                    candidates.append(((1, rule.priority), rule, state))
            elif state.active and now - state.last_cued_t >= self.cooldown_s(rule):
                candidates.append(((0, rule.priority), rule, state))
        for _, rule, state in sorted(candidates, key=lambda c: c[0], reverse=True):
            praise = not state.active
            evidence = state.fixed_support_t if praise else state.support_t
            due_t = state.praise_due_t if state.praise_due_t is not None else now
            too_late = praise and now - due_t > PRAISE_MAX_DELAY_S
            stale = now - evidence > self.settings.stale_after_s
            if stale and not praise and now - state.judged_t <= self.settings.stale_after_s:
                continue  # fresh steps, none faulty lately: maybe a fix, not a lagging stage
            if stale or too_late:
                self.counters.dropped_stale[rule.id] += 1
                state.forget_episode()
                continue
            return self._speak(rule, state, praise, evidence, now)
        return None

    def _view_can_see(self, rule: CueRule, view: Optional[View]) -> bool:
        return view in rule.views and any(visible(m, view) for m in rule.metrics)

    def _speak(
        self, rule: CueRule, state: _RuleState, praise: bool, evidence: float, now: float
    ) -> Cue:
        if praise:
            text = self._pick(rule.praise, state.last_praise)
            state.last_praise = text
            state.praise_due_t = None
            state.told = False
            state.repeats = 0
            self.counters.praise[rule.id] += 1
        else:
            text = self._pick(rule.phrases, state.last_phrase)
            state.last_phrase = text
            state.told = True
            state.repeats += 1
            state.last_cued_t = now
            self.counters.corrections[rule.id] += 1
        self._mark_spoken(now)
        return Cue(
            t_emit=now,
            cue_id=rule.id,
            text=text,
            kind="praise" if praise else "correction",
            priority=rule.priority,
            evidence_t=evidence,
            chime=praise,
            metrics=rule.metrics,
        )

    def _pick(self, phrases: Sequence[str], last: Optional[str]) -> str:
        choices = [p for p in phrases if p != last] or list(phrases)
        return self._rng.choice(choices)

    def _mark_spoken(self, now: float) -> None:
        self._last_spoken_t = now
        self._spoken.append(now)

    # --- programs --------------------------------------------------------------------

    def _program_lines(self, now: float, running: bool) -> list[ProgramLine]:
        lines = self._load.update(self.running_s)
        if self._retro is not None:
            lines += self._retro.update(now, self.running_s, running)
        if self._cadence is not None:
            settled = self.baseline.get("cadence_spm") if self._warm else None
            lines += self._cadence.update(
                now, self.running_s, running, settled, self._recent_median(self._recent_cadence)
            )
        return lines

    def _program_cue(self, line: ProgramLine, now: float) -> Cue:
        """Program instructions are timed by the program, not the correction gap; they still
        hold corrections off for a gap after them."""
        cue_id, text = line
        self.counters.program[cue_id] += 1
        self._mark_spoken(now)
        return Cue(t_emit=now, cue_id=cue_id, text=text, kind="program", priority=1000)
