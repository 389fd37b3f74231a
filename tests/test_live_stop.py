"""The runner's STOP: it ends a retro drill (from the coach stage, the chain, the terminal's
key, which leaves the terminal as it found it), else the session; stepping off the belt
ends a drill too."""

from __future__ import annotations

import json
import os
import pty
import termios
from pathlib import Path

from daemon_harness import (
    RETRO_AT_ONCE,
    RUNNER,
    STARTUP_S,
    require_synthetic,
    start_daemon,
    wait_until,
)

from coachd.coach.coaching import Coaching
from coachd.coach.programs import (
    RETRO_PREPARE_S,
    RETRO_STEP_OFF_S,
    RetroDrills,
    RetroProgress,
)
from coachd.messages import Activity, GaitUpdate
from coachd.settings import Settings

FRAME_S = 1.0 / 30.0


def _drills() -> RetroDrills:
    drills = RetroDrills(RetroProgress(), first_at_s=0.0)
    assert drills.update(0.0, 0.0, running=True) == [("retro_prepare", drills.phrases()[0])]
    assert drills.in_drill
    return drills


def test_stop_ends_a_drill_as_a_problem_and_no_drill_follows() -> None:
    drills = _drills()
    step = drills.step(1.0, 1.0)
    assert step is not None and step.step == "prepare"
    assert step.ends_in_s == RETRO_PREPARE_S - 1.0
    assert [cue_id for cue_id, _ in drills.stop(1.0, problem=True)] == ["retro_stop"]
    assert not drills.in_drill and drills.step(2.0, 2.0) is None
    assert drills.update(1000.0, 1000.0, running=True) == []
    assert drills.result().level == 0 and drills.problem


def test_stepping_off_ends_a_drill_without_counting_a_problem() -> None:
    drills = _drills()
    # Out of view for less than RETRO_STEP_OFF_S (turning round): the drill goes on.
    assert drills.update(1.0, 1.0, running=False, present=False) == []
    assert drills.update(1.0 + RETRO_STEP_OFF_S / 2, 1.0, running=False, present=True) == []
    assert drills.in_drill
    t = 3.0
    drills.update(t, 1.0, running=False, present=False)
    lines = drills.update(t + RETRO_STEP_OFF_S, 1.0, running=False, present=False)
    assert [cue_id for cue_id, _ in lines] == ["retro_off"]
    assert not drills.in_drill and not drills.problem
    assert drills.result() == RetroProgress()  # no step up, no step back


def _coaching(program: str) -> Coaching:
    settings = Settings.model_validate(
        {
            "engine": {"program": program, "warmup_s": 0.0, "retro_first_s": 0.0},
            "service": {"session_start_s": 1.0},
        }
    )
    return Coaching.from_settings(settings)


def _run(coaching: Coaching, t0: float, seconds: float, activity: Activity = "running") -> float:
    t = t0
    while t < t0 + seconds:
        coaching.update(GaitUpdate(t, activity, "side-right" if activity != "absent" else None))
        t += FRAME_S
    return t


def test_stop_ends_the_drill_first_then_the_session() -> None:
    coaching = _coaching("retro")
    t = _run(coaching, 0.0, 3.0)
    assert coaching.active and coaching.engine.in_drill
    stopped, step = coaching.stop(t)
    assert stopped == "drill" and [c.cue_id for c in step.cues] == ["retro_stop"]
    assert coaching.active  # the runner runs on
    stopped, step = coaching.stop(t)
    assert stopped == "session" and step.ended
    assert [c.kind for c in step.cues] == ["summary"]
    # Running on after a STOP starts no new session until the runner stops running.
    t = _run(coaching, t, 5.0)
    assert not coaching.active
    t = _run(coaching, t, 1.0, "standing")
    _run(coaching, t, 3.0)
    assert coaching.active and coaching.engine.in_drill  # a new session, its own drills


def test_stop_with_nothing_on_does_nothing() -> None:
    coaching = _coaching("free")
    stopped, step = coaching.stop(0.0)
    assert stopped == "nothing" and step.cues == [] and not step.ended


def test_the_terminal_key_stops_a_drill(tmp_path: Path) -> None:
    require_synthetic()
    controller, terminal = pty.openpty()
    daemon = start_daemon(tmp_path, RUNNER, RETRO_AT_ONCE, stdin=terminal)
    os.close(terminal)

    def said() -> list[str]:
        if not daemon.speech_log.is_file():
            return []
        lines = daemon.speech_log.read_text().splitlines()
        return [json.loads(line)["cue_id"] for line in lines if line.strip()]

    try:
        daemon.wait_ready(STARTUP_S)
        assert wait_until(lambda: "retro_prepare" in said(), 60.0), daemon.output()[-2000:]
        os.write(controller, b"s")
        assert wait_until(lambda: "retro_stop" in said(), 30.0), daemon.output()[-2000:]
        assert not termios.tcgetattr(controller)[3] & termios.ICANON  # keys, not lines
        assert daemon.stop() == 0
        assert termios.tcgetattr(controller)[3] & termios.ICANON  # the terminal given back
    finally:
        daemon.cleanup()
        os.close(controller)
