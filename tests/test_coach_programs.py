"""Coaching programs: retro drills and their progression, the cadence block with its metronome,
and the weekly-load rule, driven through the engine with simulated strides."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from test_coach_engine import CLEAN, FAULTS, T0, Runner, simulate

from coachd.coach import CueEngine, CuePack, Metronome, RetroProgress, load_packs, weekly_load
from coachd.coach.programs import (
    CADENCE_BLOCK_S,
    CADENCE_WORD_GAP_S,
    RETRO_LADDER,
    RETRO_PREPARE_S,
    advance_retro,
)
from coachd.messages import Activity
from coachd.settings import EngineSettings


@pytest.fixture(scope="module")
def pack() -> CuePack:
    return load_packs(EngineSettings())


# --- retro ---------------------------------------------------------------------------------


def test_retro_ladder_takes_at_least_six_sessions_to_two_minutes() -> None:
    progress = RetroProgress()
    intervals = [progress.interval_s]
    while progress.stage == "walk" and progress.interval_s < 120:
        progress = advance_retro(progress, completed=2, problem=False)
        intervals.append(progress.interval_s)
    assert intervals[0] <= 30 and intervals[-1] == 120
    assert len(intervals) - 1 >= 6
    assert intervals == sorted(intervals)
    running = advance_retro(progress, completed=1, problem=False)
    assert running.stage == "run" and running.interval_s == RETRO_LADDER[0]


def test_retro_steps_back_on_pain_or_balance_and_waits_without_a_drill() -> None:
    mid = RetroProgress("walk", 3, 3)
    assert advance_retro(mid, completed=1, problem=True).level == 2
    assert advance_retro(mid, completed=0, problem=False) == mid
    bottom_run = RetroProgress("run", 0, 9)
    back = advance_retro(bottom_run, completed=0, problem=True)
    assert back.stage == "walk" and back.interval_s == 120
    assert advance_retro(RetroProgress(), completed=1, problem=True).level == 0


def _retro_engine(pack: CuePack, progress: RetroProgress) -> CueEngine:
    engine = CueEngine(EngineSettings(program="retro"), pack)
    engine.reset(retro=progress)
    return engine


def test_retro_session_runs_drills_and_keeps_corrections_out_of_them(pack: CuePack) -> None:
    engine = _retro_engine(pack, RetroProgress("walk", 3, 3))
    drill_from = engine.settings.warmup_s + 60.0

    def activity(elapsed: float) -> Activity:  # walking backwards inside the drill
        in_drill = drill_from + RETRO_PREPARE_S <= elapsed < drill_from + RETRO_PREPARE_S + 60.0
        return "walking" if in_drill else "running"

    def plan(elapsed: float) -> Runner:  # odd numbers while turning round and back
        near = drill_from - 1.0 <= elapsed <= drill_from + RETRO_PREPARE_S + 80.0
        return FAULTS["overstride"] if near else CLEAN

    session = simulate(engine, plan, 300.0, activity=activity)
    program = session.of_kind("program")
    assert [c.cue_id for c in program] == ["retro_prepare", "retro_go", "retro_done"]
    prepare, go, done = (c.t_emit - T0 for c in program)
    assert prepare == pytest.approx(drill_from, abs=0.1)
    assert go - prepare == pytest.approx(RETRO_PREPARE_S, abs=0.1)
    assert done - go == pytest.approx(60.0, abs=0.1)
    assert "60 seconds" in program[1].text and "backwards" in program[1].text
    assert session.corrections() == [], "no corrections around a drill"
    assert {c.text for c in program} <= set(engine.all_phrases())
    assert engine.retro_result() == RetroProgress("walk", 4, 4)


def test_retro_problem_stops_the_drill_and_steps_back(pack: CuePack) -> None:
    engine = _retro_engine(pack, RetroProgress("walk", 2, 2))
    first = simulate(engine, CLEAN, engine.settings.warmup_s + 60.0 + RETRO_PREPARE_S + 5.0)
    assert [c.cue_id for c in first.of_kind("program")] == ["retro_prepare", "retro_go"]
    stop = engine.report_problem(first.end_t)
    assert [c.cue_id for c in stop] == ["retro_stop"] and stop[0].kind == "program"
    later = simulate(engine, CLEAN, 900.0, start=first.end_t)
    assert later.of_kind("program") == [], "no more drills after pain or lost balance"
    assert engine.retro_result() == RetroProgress("walk", 1, 3)


def test_report_outside_retro_is_ignored(pack: CuePack) -> None:
    engine = CueEngine(EngineSettings(), pack)
    assert engine.report_problem(T0) == [] and engine.retro_result() is None


# --- cadence -------------------------------------------------------------------------------


def test_cadence_block_with_metronome(pack: CuePack) -> None:
    engine = CueEngine(EngineSettings(program="cadence", metronome=True), pack)
    warm = engine.settings.warmup_s

    def plan(elapsed: float) -> Runner:
        if elapsed < warm + 60.0:
            return CLEAN  # keeps to 170 at first: nudged
        if elapsed < warm + 180.0:
            return replace(CLEAN, cadence=179.0, overstride=0.30)  # finds the rhythm
        return FAULTS["overstride"]

    seen: list[Metronome] = []
    first = simulate(engine, plan, warm + 5.0)
    metronome = engine.metronome()
    assert metronome is not None
    seen.append(metronome)
    rest = simulate(engine, plan, 240.0, start=first.end_t)
    cues = first.cues + rest.cues
    program = [c.cue_id for c in cues if c.kind == "program"]
    assert program[0] == "cadence_start" and "clicks" in cues[0].text
    assert f"{seen[0].cadence_spm:.0f} steps a minute" in cues[0].text, "the clicks' rate"
    assert "cadence_quicker" in program and program.count("cadence_hold") == 1
    assert program.index("cadence_quicker") < program.index("cadence_hold")
    assert program[-1] == "cadence_end"
    assert engine.metronome() is None, "the clicks stop with the block"
    end_t = next(c.t_emit for c in cues if c.cue_id == "cadence_end")
    corrections = [c for c in cues if c.kind == "correction"]
    assert corrections and min(c.t_emit for c in corrections) > end_t, "block: one idea only"
    assert {c.text for c in cues if c.cue_id != "cadence_start"} <= set(engine.all_phrases())
    # Target: the runner's own settled cadence +5%, one click per step.
    settled = engine.baseline.get("cadence_spm")
    assert settled is not None and 166.0 < settled < 174.0
    assert seen[0].cadence_spm == pytest.approx(settled * 1.05)


def test_cadence_block_without_metronome_has_no_clicks(pack: CuePack) -> None:
    engine = CueEngine(EngineSettings(program="cadence"), pack)
    session = simulate(engine, CLEAN, engine.settings.warmup_s + 5.0)
    assert [c.cue_id for c in session.of_kind("program")] == ["cadence_start"]
    assert "clicks" not in session.cues[0].text and engine.metronome() is None


def test_cadence_block_never_contradicts_itself_and_says_its_target_once(
    pack: CuePack,
) -> None:
    """A runner who keeps finding and losing the rhythm: "hold it" is never followed by "a
    touch quicker" (or the reverse) within 20 s, and the target is said once, in numbers."""
    engine = CueEngine(EngineSettings(program="cadence", metronome=True), pack)
    warm = engine.settings.warmup_s

    def plan(elapsed: float) -> Runner:  # on the target for 6 s, off it for 6 s, and again
        if elapsed < warm:
            return CLEAN
        return replace(CLEAN, cadence=181.0 if int(elapsed // 6.0) % 2 else 171.0)

    targets: list[float] = []

    def watch(engine: CueEngine) -> None:
        metronome = engine.metronome()
        if metronome is not None and not targets:
            targets.append(metronome.cadence_spm)

    session = simulate(engine, plan, warm + CADENCE_BLOCK_S, observe=watch)
    words = [
        c for c in session.of_kind("program") if c.cue_id in ("cadence_quicker", "cadence_hold")
    ]
    assert {c.cue_id for c in words} == {"cadence_quicker", "cadence_hold"}, "both were due"
    for before, after in zip(words, words[1:]):
        assert after.t_emit - before.t_emit >= CADENCE_WORD_GAP_S >= 20.0, (before, after)
    numbers = [c for c in session.cues if "steps a minute" in c.text]
    assert len(numbers) == 1 and numbers[0].cue_id == "cadence_start"
    assert targets and f"{targets[0]:.0f} steps a minute" in numbers[0].text


def test_metronome_rate_is_the_step_rate() -> None:
    assert Metronome(start_t=100.0, end_t=110.0, interval_s=0.25).cadence_spm == 240.0


# --- the weekly-load rule ------------------------------------------------------------------


TODAY = date(2026, 11, 21)


def history(last_week: list[float], this_week: list[float]) -> list[tuple[date, float]]:
    out = [(TODAY - timedelta(days=13 - i), m) for i, m in enumerate(last_week)]
    out += [(TODAY - timedelta(days=6 - i), m) for i, m in enumerate(this_week)]
    return out


def test_weekly_load_figures() -> None:
    load = weekly_load(history([30, 0, 30, 0, 40, 0, 0], [30, 0, 30, 0, 0, 0]), TODAY)
    assert load is not None
    assert load.last_week_min == 100 and load.this_week_min == 60
    assert load.limit_min == pytest.approx(110)
    assert load.allowed_today_min == pytest.approx(50)
    assert not load.over(50.0) and load.over(51.0)
    assert weekly_load(history([0] * 7, [30, 30]), TODAY) is None, "no previous week: no rule"
    old = [(TODAY - timedelta(days=40), 300.0)]
    assert weekly_load(old, TODAY) is None


def test_engine_says_once_when_the_session_passes_ten_percent(pack: CuePack) -> None:
    engine = CueEngine(EngineSettings(), pack)
    engine.reset(history=history([20, 0, 0, 0, 0, 0, 0], [10, 0, 0, 0, 0, 0]), today=TODAY)
    session = simulate(engine, CLEAN, 900.0)
    program = session.of_kind("program")
    assert [c.cue_id for c in program] == ["weekly_load"]
    assert T0 + 12 * 60 <= program[0].t_emit <= T0 + 12 * 60 + 1.0  # 22 - 10 = 12 minutes


def test_engine_warns_early_when_the_week_is_already_over(pack: CuePack) -> None:
    engine = CueEngine(EngineSettings(), pack)
    engine.reset(history=history([20, 0, 0, 0, 0, 0, 0], [30, 0, 0, 0, 0, 0]), today=TODAY)
    session = simulate(engine, CLEAN, 120.0)
    program = session.of_kind("program")
    assert [c.cue_id for c in program] == ["weekly_load"]
    assert program[0].t_emit < T0 + 35.0 and "short and easy" in program[0].text
    no_history = CueEngine(EngineSettings(), pack)
    assert simulate(no_history, CLEAN, 120.0).cues == []
