"""Coaching programs on top of free coaching: retro (backwards) drills, a +5% cadence block,
and the weekly-load rule. Each program speaks through `program` cues with fixed wording, so
every phrase can be pre-rendered; time comes from the caller, never the wall clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal, Optional

RetroStage = Literal["walk", "run"]

# Interval lengths, seconds: 15 s at first, 2 minutes after at least six sessions of progress.
RETRO_LADDER: tuple[int, ...] = (15, 30, 45, 60, 80, 100, 120)
RETRO_PREPARE_S = 15.0  # to slow the belt and turn round safely
RETRO_SETTLE_S = 20.0  # to turn back and build up speed before form counts again
RETRO_EVERY_S = 240.0  # of forward running between drills (drills are active recovery)
RETRO_PER_SESSION = 3
RETRO_STEP_OFF_S = 3.0  # nobody in view this long during a drill: the runner stepped off
CADENCE_BLOCK_S = 180.0
CADENCE_REST_S = 120.0
CADENCE_SETTLE_S = 20.0  # before judging whether the runner found the new rhythm
CADENCE_NUDGE_EVERY_S = 20.0
# After any word on the rhythm, none for this long: a runner told to hold it is not told to
# speed up seconds later because one reading dipped.
CADENCE_WORD_GAP_S = 20.0
CADENCE_TOLERANCE = 0.02  # within 2% of the target counts as on it
WEEKLY_MAX_INCREASE = 0.10

ProgramLine = tuple[str, str]  # (cue id, text)


@dataclass(frozen=True)
class RetroProgress:
    """A runner's place on the retro ladder; the service stores it between sessions."""

    stage: RetroStage = "walk"
    level: int = 0  # index into RETRO_LADDER
    sessions: int = 0  # sessions that included at least one drill

    @property
    def interval_s(self) -> int:
        return RETRO_LADDER[max(0, min(self.level, len(RETRO_LADDER) - 1))]


def advance_retro(progress: RetroProgress, completed: int, problem: bool) -> RetroProgress:
    """The ladder after a session: a step back on pain or lost balance, a step up after a
    session with a completed drill, unchanged when no drill was done.

    One step per session, so walking reaches 2 minutes after six sessions at the earliest;
    then running backwards starts again at the bottom."""
    top = len(RETRO_LADDER) - 1
    if problem:
        if progress.level > 0:
            return replace(progress, level=progress.level - 1, sessions=progress.sessions + 1)
        if progress.stage == "run":
            return RetroProgress("walk", top, progress.sessions + 1)
        return replace(progress, sessions=progress.sessions + 1)
    if completed <= 0:
        return progress
    if progress.level < top:
        return replace(progress, level=progress.level + 1, sessions=progress.sessions + 1)
    if progress.stage == "walk":
        return RetroProgress("run", 0, progress.sessions + 1)
    return replace(progress, sessions=progress.sessions + 1)


def _retro_go(stage: RetroStage, seconds: int) -> str:
    verb = "Walk" if stage == "walk" else "Run"
    return f"{verb} backwards now for {seconds} seconds, hands near the rails."


RETRO_PREPARE = {
    "walk": "Drill time: slow the belt to a walk and turn around.",
    "run": "Drill time: slow the belt right down and turn around.",
}
RETRO_DONE = "Turn back round and build up to your run."
RETRO_STOP = "Stop the drill: turn back round and walk forwards."
RETRO_STEPPED_OFF = "Drill stopped. Step back on facing forwards when you're ready."


@dataclass(frozen=True)
class ProgramStep:
    """Where a program is now, for a live display: its step, what the target is, and the
    seconds left in the step when it runs on a clock."""

    program: str  # "retro", "cadence"
    step: str  # retro: "prepare", "drill", "between"; cadence: "block"
    ends_in_s: Optional[float] = None
    target_spm: Optional[float] = None


class RetroDrills:
    """Backwards intervals in a session: prepare, go, done; stopped for the rest of the
    session by STOP, a reported problem, or the runner stepping off."""

    def __init__(self, progress: RetroProgress, first_at_s: float) -> None:
        self.progress = progress
        self.next_at_s = first_at_s  # running time of the next drill
        self.completed = 0
        self.problem = False
        self.stopped = False
        self._phase: Optional[Literal["prepare", "go"]] = None
        self._phase_t = 0.0
        self._quiet_until = -math.inf
        self._absent_since: Optional[float] = None

    @property
    def in_drill(self) -> bool:
        """From the call to prepare until the drill is done or stopped."""
        return self._phase is not None

    def update(
        self, now: float, running_s: float, running: bool, present: bool = True
    ) -> list[ProgramLine]:
        """`present`: someone is in view (a drill stops when nobody is for a few seconds)."""
        if self.stopped:
            return []
        if self._stepped_off(now, present):
            return self.stop(now, problem=False)
        stage = self.progress.stage
        if self._phase is None:
            if running and running_s >= self.next_at_s and self.completed < RETRO_PER_SESSION:
                self._phase, self._phase_t = "prepare", now
                self._quiet_until = math.inf
                return [("retro_prepare", RETRO_PREPARE[stage])]
            return []
        if self._phase == "prepare" and now - self._phase_t >= RETRO_PREPARE_S:
            self._phase, self._phase_t = "go", now
            return [("retro_go", _retro_go(stage, self.progress.interval_s))]
        if self._phase == "go" and now - self._phase_t >= self.progress.interval_s:
            self._phase = None
            self.completed += 1
            self.next_at_s = running_s + RETRO_EVERY_S
            self._quiet_until = now + RETRO_SETTLE_S
            return [("retro_done", RETRO_DONE)]
        return []

    def report_problem(self, now: float) -> list[ProgramLine]:
        """Pain or lost balance: stop any drill now and do no more this session."""
        return self.stop(now, problem=True)

    def stop(self, now: float, problem: bool) -> list[ProgramLine]:
        """End any drill now and do no more this session; `problem` (pain, lost balance,
        the STOP button) also steps the ladder back. The runner stepping off is no problem."""
        self.stopped = True
        self.problem = self.problem or problem
        in_drill = self._phase is not None
        self._phase = None
        self._quiet_until = now + RETRO_SETTLE_S if in_drill else -math.inf
        if not in_drill:
            return []
        return [("retro_stop", RETRO_STOP)] if problem else [("retro_off", RETRO_STEPPED_OFF)]

    def _stepped_off(self, now: float, present: bool) -> bool:
        if present or self._phase is None:
            self._absent_since = None
            return False
        if self._absent_since is None:
            self._absent_since = now
        return now - self._absent_since >= RETRO_STEP_OFF_S

    def step(self, now: float, running_s: float) -> Optional[ProgramStep]:
        """The drill's step and the seconds left in it; None once drills are over."""
        if self._phase == "prepare":
            return ProgramStep("retro", "prepare", RETRO_PREPARE_S - (now - self._phase_t))
        if self._phase == "go":
            return ProgramStep("retro", "drill", self.progress.interval_s - (now - self._phase_t))
        if self.stopped or self.completed >= RETRO_PER_SESSION:
            return None
        return ProgramStep("retro", "between", max(0.0, self.next_at_s - running_s))

    def quiet(self, now: float) -> bool:
        """True while a drill is on: no corrections, and strides do not count as form."""
        return now < self._quiet_until

    def result(self) -> RetroProgress:
        return advance_retro(self.progress, self.completed, self.problem)

    @staticmethod
    def phrases() -> list[str]:
        out = [*RETRO_PREPARE.values(), RETRO_DONE, RETRO_STOP, RETRO_STEPPED_OFF]
        stages: tuple[RetroStage, ...] = ("walk", "run")
        for stage in stages:
            out += [_retro_go(stage, s) for s in RETRO_LADDER]
        return out


@dataclass(frozen=True)
class Metronome:
    """The cadence block's metronome: its window and one click per step at the target cadence
    (the speaker clicks at `cadence_spm` while the block runs)."""

    start_t: float
    end_t: float
    interval_s: float

    @property
    def cadence_spm(self) -> float:
        return 60.0 / self.interval_s


def cadence_start(target_spm: float, clicks: bool) -> str:
    """The block's first words: its target in steps a minute, said once."""
    how = "in time with the clicks" if clicks else "slightly quicker, lighter steps"
    return f"Cadence block: {target_spm:.0f} steps a minute, {how}."


_TARGET_WORDS = re.compile(r"^Cadence block: (\d+) steps a minute")


def cadence_target(text: str) -> Optional[float]:
    """The target a cadence block's first words said (for reports), or None."""
    match = _TARGET_WORDS.match(text)
    return float(match.group(1)) if match else None


CADENCE_QUICKER = "A touch quicker."
CADENCE_HOLD = "That's the rhythm, hold it."
CADENCE_END = "Block done: run easy and relaxed."


class CadenceBlocks:
    """Guided blocks at the runner's own settled cadence +5%, with easy running between."""

    def __init__(self, first_at_s: float, increase: float = 0.05, metronome: bool = False) -> None:
        self.increase = increase
        self.use_metronome = metronome
        self.next_at_s = first_at_s
        self.target_spm: Optional[float] = None
        self.metronome: Optional[Metronome] = None
        self.blocks = 0
        self._start_t = 0.0
        self._end_running_s = 0.0
        self._nudged_t = -math.inf
        self._said_t = -math.inf  # the last word on the rhythm (quicker or hold)
        self._nudged = False
        self._held = False

    def in_block(self) -> bool:
        return self.target_spm is not None

    def update(
        self,
        now: float,
        running_s: float,
        running: bool,
        settled_spm: Optional[float],
        recent_spm: Optional[float],
    ) -> list[ProgramLine]:
        if self.target_spm is None:
            if running and running_s >= self.next_at_s and settled_spm:
                self.target_spm = settled_spm * (1.0 + self.increase)
                self._start_t = now
                self._end_running_s = running_s + CADENCE_BLOCK_S
                self._nudged, self._held, self._nudged_t = False, False, -math.inf
                self._said_t = -math.inf
                self.blocks += 1
                if self.use_metronome:
                    end = now + CADENCE_BLOCK_S + 60.0  # running time may pause; end() stops it
                    self.metronome = Metronome(now, end, 60.0 / self.target_spm)
                return [("cadence_start", cadence_start(self.target_spm, self.use_metronome))]
            return []
        if running_s >= self._end_running_s:
            self.target_spm = None
            self.metronome = None
            self.next_at_s = running_s + CADENCE_REST_S
            return [("cadence_end", CADENCE_END)]
        if not running or recent_spm is None or now - self._start_t < CADENCE_SETTLE_S:
            return []
        if now - self._said_t < CADENCE_WORD_GAP_S:
            return []
        on_target = recent_spm >= self.target_spm * (1.0 - CADENCE_TOLERANCE)
        if on_target and self._nudged and not self._held:
            self._held, self._said_t = True, now
            return [("cadence_hold", CADENCE_HOLD)]
        if not on_target and now - self._nudged_t >= CADENCE_NUDGE_EVERY_S:
            self._nudged, self._nudged_t, self._said_t = True, now, now
            self._held = False  # found and lost again: holding it deserves a word again
            return [("cadence_quicker", CADENCE_QUICKER)]
        return []

    @staticmethod
    def phrases() -> list[str]:
        """The fixed words (the start, with its number, is rendered on first use)."""
        return [CADENCE_QUICKER, CADENCE_HOLD, CADENCE_END]


@dataclass(frozen=True)
class WeeklyLoad:
    """Minutes in the 7 days up to today against the 7 days before (the 10% rule)."""

    this_week_min: float
    last_week_min: float
    max_increase: float = WEEKLY_MAX_INCREASE

    @property
    def limit_min(self) -> float:
        return self.last_week_min * (1.0 + self.max_increase)

    @property
    def allowed_today_min(self) -> float:
        """Minutes left today before this week is more than 10% over last week."""
        return max(0.0, self.limit_min - self.this_week_min)

    def over(self, session_min: float = 0.0) -> bool:
        return self.this_week_min + session_min > self.limit_min


def weekly_load(
    history: Iterable[tuple[date, float]],
    today: date,
    max_increase: float = WEEKLY_MAX_INCREASE,
) -> Optional[WeeklyLoad]:
    """The 10% rule from past sessions as (date, minutes); None without a previous week to
    compare with (a new runner, or back after a break: no rule to apply)."""
    this_week = last_week = 0.0
    for day, minutes in history:
        age = (today - day).days
        if 0 <= age < 7:
            this_week += minutes
        elif 7 <= age < 14:
            last_week += minutes
    if last_week <= 0.0:
        return None
    return WeeklyLoad(this_week, last_week, max_increase)


LOAD_ALREADY_OVER = "This week is already up on last week: keep today short and easy."
LOAD_REACHED = "That's this week's ten percent: ease off or finish here."


class LoadWatch:
    """Says once when this session takes the week past the 10% rule."""

    def __init__(self, load: Optional[WeeklyLoad]) -> None:
        self.load = load
        self.said = False

    def update(self, running_s: float) -> list[ProgramLine]:
        if self.load is None or self.said:
            return []
        if self.load.allowed_today_min <= 0.0 and running_s >= 30.0:
            self.said = True
            return [("weekly_load", LOAD_ALREADY_OVER)]
        if self.load.allowed_today_min > 0.0 and self.load.over(running_s / 60.0):
            self.said = True
            return [("weekly_load", LOAD_REACHED)]
        return []

    @staticmethod
    def phrases() -> list[str]:
        return [LOAD_ALREADY_OVER, LOAD_REACHED]
