"""The cue engine: stride metrics in, at most one short spoken cue at a time out.

Each rule's fault state (on, fixed, praise owed) lives in `faults.py`. Among faults that are
on, the highest priority is said, after a quiet warm-up and as the pacing allows (`pacing.py`:
a global gap, a per-cue cooldown, a cap per minute and fading); a cued fault really fixed earns
one praise. Programs (`programs.py`) speak on their own schedule. Time comes from the caller's
`now` only.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Optional

from coachd.catalog import METRICS, visible
from coachd.coach.baseline import Baseline
from coachd.coach.faults import RuleState, advance, judge, thresholds, usable
from coachd.coach.pacing import Pacing
from coachd.coach.pack import CuePack, CueRule
from coachd.coach.programs import (
    CadenceBlocks,
    LoadWatch,
    Metronome,
    ProgramLine,
    ProgramStep,
    RetroDrills,
    RetroProgress,
    weekly_load,
)
from coachd.messages import Cue, GaitUpdate, Stride, View
from coachd.settings import EngineSettings

NOT_RUNNING_RESET_S = 3.0  # a pause this long (walking, standing, out of view) starts afresh
MAX_STEP_S = 1.0  # running time added per update at most (a stalled pipeline is not running)
# A known runner's baseline comes with them: the warm-up only waits for the belt and their legs.
CARRIED_WARMUP = 1.0 / 3.0
PRAISE_MAX_DELAY_S = 20.0  # praise later than this after the fix is no longer about it
# Cadence and belt speed as judged: the median of the last steps (one step's is noisy), once
# there are enough of them.
RECENT_STEPS = 8
RECENT_STEPS_MIN = 4


@dataclass(frozen=True)
class FormBand:
    """One metric's thresholds now, as a rule judges it: fixed on the `clear` side, a fault
    past `start`, watched between (for a live display)."""

    metric: str
    rule_id: str
    start: float
    clear: float
    fault_above: bool  # the fault lies above `start` (else below it)
    active: bool  # the rule's fault is on


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
        baseline: Optional[Mapping[str, float]] = None,
    ) -> None:
        """Start a new session: forget the baseline, windows, counters and timers.

        `history` (date, minutes) of past sessions with `today` turns on the weekly-load rule;
        `retro` is the runner's stored retro progress (for engine.program = "retro");
        `baseline` a known runner's usual values, which shorten the warm-up."""
        self._rng = random.Random(self._seed)
        self.baseline = Baseline.carried(baseline) if baseline else Baseline()
        self._warmup_s = self.settings.warmup_s * (CARRIED_WARMUP if baseline else 1.0)
        self.counters = EngineCounters()
        self._states = {rule.id: RuleState.new(rule) for rule in self.pack.rules}
        self._last_now: Optional[float] = None
        self._last_step = 0.0
        self.running_s = 0.0
        self._warm = False
        self._not_running_since: Optional[float] = None
        self._pacing = Pacing(self.settings)
        self._recent_cadence: deque[float] = deque(maxlen=RECENT_STEPS)
        self._recent_speed: deque[float] = deque(maxlen=RECENT_STEPS)
        warmup = self.settings.warmup_s
        self._retro = (
            RetroDrills(retro or RetroProgress(), first_at_s=warmup + self.settings.retro_first_s)
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
        self._pacing.settings = settings
        self.pack = pack
        self._states = {
            rule.id: self._states.get(rule.id) or RuleState.new(rule) for rule in pack.rules
        }
        for rule in pack.rules:  # a changed persistence or averaging needs fresh windows
            state = self._states[rule.id]
            if state.window.maxlen != rule.persistence_n or len(state.recent) != len(
                rule.conditions
            ):
                self._states[rule.id] = RuleState.new(rule)
        if program_changed:
            retro = self._retro.progress if self._retro else None
            if settings.program == "retro":
                self._retro = RetroDrills(
                    retro or RetroProgress(), self.running_s + settings.retro_first_s
                )
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

    @property
    def in_drill(self) -> bool:
        """A retro drill is on (from its call to prepare until done or stopped)."""
        return self._retro is not None and self._retro.in_drill

    @property
    def warmed_up(self) -> bool:
        """The quiet warm-up is over: corrections may be said."""
        return self._warm

    def program_step(self, now: float) -> Optional[ProgramStep]:
        """Where the program is now (None: free coaching, or between cadence blocks)."""
        if self._retro is not None:
            return self._retro.step(now, self.running_s)
        if self._cadence is not None and self._cadence.target_spm is not None:
            return ProgramStep("cadence", "block", target_spm=self._cadence.target_spm)
        return None

    def cadence_spm(self) -> Optional[float]:
        """The runner's cadence as the rules and the cadence blocks judge it (None until
        enough steps of this session; drills count)."""
        return self._recent_median(self._recent_cadence)

    def form_bands(self, view: Optional[View]) -> list[FormBand]:
        """Each metric the enabled rules judge in `view`, one band per metric, with today's
        thresholds (shifted with speed, or from the runner's baseline once it is known):
        faults that are on first, then by priority."""
        speed = self._recent_median(self._recent_speed)
        bands: dict[str, FormBand] = {}
        ranked = sorted(self._judged(), key=lambda rs: (not rs[1].active, -rs[0].priority))
        for rule, state in ranked:
            if not self._view_can_see(rule, view):
                continue
            for condition in rule.when:
                limits = thresholds(condition, speed, self.baseline)
                if (
                    limits is None
                    or condition.metric in bands
                    or not visible(condition.metric, view)
                ):
                    continue
                start, clear = limits
                above = condition.direction == "above"
                bands[condition.metric] = FormBand(
                    condition.metric, rule.id, start, clear, above, state.active
                )
        return list(bands.values())

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
        present = update.activity != "absent"
        lines = self._program_lines(now, running, present)
        out = [self._program_cue(line, now) for line in lines]
        quiet = self._retro is not None and self._retro.quiet(now)
        if running:
            for stride in sorted(update.strides, key=lambda s: s.t):
                if usable(stride, "cadence_spm", 0.5):  # drills too: the live page shows it
                    self._recent_cadence.append(stride.metrics["cadence_spm"])
                if not quiet:
                    self._observe(stride)
        if running and not quiet:
            if not self._warm and self.running_s >= self._warmup_s:
                self._warm = True
                self.baseline.finish_warmup(self._warmup_s)
        elif quiet:
            for state in self._states.values():
                state.forget_episode()
        if self._warm and running and not quiet:
            if not any(s.active for r, s in self._judged()):
                self._pacing.good_form_s += self._last_step
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
                self._pacing.post_warmup_s += step
            self._not_running_since = None
            return
        if self._not_running_since is None:
            self._not_running_since = now
        elif now - self._not_running_since >= NOT_RUNNING_RESET_S:
            for state in self._states.values():
                state.forget_episode()

    def fade_factor(self) -> float:
        """How much longer gaps and cooldowns are now (see Pacing)."""
        return self._pacing.fade_factor()

    def current_gap_s(self) -> float:
        return self._pacing.current_gap_s()

    def cooldown_s(self, rule: CueRule) -> float:
        return self._pacing.cooldown_s(rule, self._states[rule.id].repeats)

    # --- judging strides -------------------------------------------------------------

    def _judged(self) -> list[tuple[CueRule, RuleState]]:
        return [(r, self._states[r.id]) for r in self.pack.enabled]

    def _observe(self, stride: Stride) -> None:
        for metric, value in stride.metrics.items():
            if metric in METRICS and usable(stride, metric, 0.5):
                self.baseline.add(metric, value, self.running_s)
        if usable(stride, "belt_speed_kmh", 0.5):
            self._recent_speed.append(stride.metrics["belt_speed_kmh"])
        speed = self._recent_median(self._recent_speed)  # one step's speed is noisy
        for rule, state in self._judged():
            if stride.view not in rule.views:
                continue
            if not self._gate_open(rule, speed):
                state.forget_episode()  # out of the rule's context (speed): not a fix
                continue
            judgement = judge(rule, state, stride, speed, self.baseline)
            if judgement is None:
                continue
            outcome = advance(rule, state, judgement, stride.t, self.settings)
            if outcome == "started":
                self.counters.started[rule.id] += 1
            elif outcome == "cleared":
                self.counters.cleared[rule.id] += 1

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
            cadence = self.cadence_spm()
            if cadence is None:
                return False
            if gate.min_cadence_spm is not None and cadence < gate.min_cadence_spm:
                return False
            if gate.max_cadence_spm is not None and cadence > gate.max_cadence_spm:
                return False
        return True

    @staticmethod
    def _recent_median(values: deque[float]) -> Optional[float]:
        return statistics.median(values) if len(values) >= RECENT_STEPS_MIN else None

    # --- choosing what to say --------------------------------------------------------

    def _choose(self, view: Optional[View], now: float) -> Optional[Cue]:
        if self._cadence is not None and self._cadence.in_block():
            return None  # the block's own cues say one thing: the rhythm
        if not self._pacing.may_speak(now):
            return None
        candidates: list[tuple[tuple[int, int], CueRule, RuleState]] = []
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
            return self._speak(rule, state, praise, now)
        return None

    def _view_can_see(self, rule: CueRule, view: Optional[View]) -> bool:
        return view in rule.views and any(visible(m, view) for m in rule.metrics)

    def _speak(self, rule: CueRule, state: RuleState, praise: bool, now: float) -> Cue:
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
        self._pacing.mark_spoken(now)
        return Cue(
            t_emit=now,
            cue_id=rule.id,
            text=text,
            kind="praise" if praise else "correction",
            priority=rule.priority,
            chime=praise,
            metrics=rule.metrics,
        )

    def _pick(self, phrases: Sequence[str], last: Optional[str]) -> str:
        choices = [p for p in phrases if p != last] or list(phrases)
        return self._rng.choice(choices)

    # --- programs --------------------------------------------------------------------

    def _program_lines(self, now: float, running: bool, present: bool) -> list[ProgramLine]:
        lines = self._load.update(self.running_s)
        if self._retro is not None:
            lines += self._retro.update(now, self.running_s, running, present)
        if self._cadence is not None:
            settled = self.baseline.get("cadence_spm") if self._warm else None
            lines += self._cadence.update(now, self.running_s, running, settled, self.cadence_spm())
        return lines

    def _program_cue(self, line: ProgramLine, now: float) -> Cue:
        """Program instructions are timed by the program, not the correction gap; they still
        hold corrections off for a gap after them."""
        cue_id, text = line
        self.counters.program[cue_id] += 1
        self._pacing.mark_spoken(now)
        return Cue(t_emit=now, cue_id=cue_id, text=text, kind="program", priority=1000)
