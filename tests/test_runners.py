"""Runners known by QR code: the keyed hash, the key file, the greeting their history buys."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from coachd.capture.synthetic.params import parse_spec
from coachd.coach.sessions import RunnerRecap, runner_greeting
from coachd.errors import SourceSpecError
from coachd.service.runners import load_key, profile_of, runner_key
from coachd.service.store import DB_NAME, SessionStore
from coachd.service.store_writer import StoreWriter


def test_only_a_keyed_hash_of_the_code_is_kept_and_the_key_file_is_private(
    tmp_path: Path,
) -> None:
    key = load_key("", tmp_path / "state")
    assert stat.S_IMODE((tmp_path / "state" / "runners.key").stat().st_mode) == 0o600
    assert load_key("", tmp_path / "state") == key  # made once
    runner = runner_key(key, "member-4711")
    assert runner == runner_key(key, "member-4711") and "4711" not in runner
    assert runner != runner_key(b"another gym", "member-4711")
    assert load_key("configured", tmp_path / "elsewhere") == b"configured"
    assert not (tmp_path / "elsewhere").exists()


def test_the_greeting_recalls_the_last_session_and_the_weekly_load_rule() -> None:
    assert runner_greeting("Ana", RunnerRecap()).startswith("Hi Ana, welcome!")
    recap = RunnerRecap(
        sessions=3,
        last_minutes=20.0,
        last_work_on="Land closer under your hips",
        week_minutes=40.0,
        last_week_minutes=60.0,
    )
    text = runner_greeting("Ana", recap)
    assert text.startswith("Welcome back, Ana: 3 sessions so far, 40 minutes this week.")
    assert "Last time we worked on this: land closer under your hips." in text
    assert "10%" not in text
    over = RunnerRecap(sessions=5, week_minutes=67.0, last_week_minutes=60.0)
    past = runner_greeting("Ana", over)
    assert "more than 10% over last week's 60 minutes: keep today easy" in past


def test_the_synthetic_runner_holds_up_a_code_for_its_first_seconds() -> None:
    params = parse_spec("synthetic:?qr=member%204711&qr_seconds=3")
    assert (params.qr, params.qr_seconds) == ("member 4711", 3.0)
    with pytest.raises(SourceSpecError, match="qr='' is not allowed; qr must be 1 to 200"):
        parse_spec("synthetic:?qr=")


def test_a_known_runners_baseline_comes_with_them_and_shortens_the_warm_up() -> None:
    from coachd.coach import CueEngine, load_packs
    from coachd.messages import GaitUpdate
    from coachd.settings import EngineSettings

    settings = EngineSettings(warmup_s=60.0)
    engine = CueEngine(settings, load_packs(settings))

    def run_for(seconds: float) -> None:
        t = 0.0
        while t < seconds:
            t += 0.5
            engine.update(GaitUpdate(t, "running", "side-right"), now=t)

    engine.reset(baseline={"cadence_spm": 171.5})
    assert engine.baseline.get("cadence_spm") == 171.5
    assert engine.baseline.get("trunk_lean_deg") is None  # learned afresh
    run_for(25.0)
    assert engine.warmed_up and engine.baseline.get("cadence_spm") == 171.5
    engine.reset()
    assert engine.baseline.get("cadence_spm") is None
    run_for(25.0)
    assert not engine.warmed_up


def test_a_configured_runner_and_a_signed_in_one_bring_the_same_history(tmp_path: Path) -> None:
    db = tmp_path / DB_NAME
    store = SessionStore(db)
    for minutes in (20.0, 30.0):
        started = time.time() - 86400.0 + minutes
        session = store.start_session(runner="ana", started=started)
        store.end_session(session, {"duration_s": minutes * 60}, ended=started + minutes * 60)
    store.set_program_state("ana", "retro", {"sessions": 2})
    signed_in = profile_of(store, store.add_runner("ana", "Ana"))
    store.close()
    assert [m for _, m in signed_in.history.sessions] == pytest.approx([30.0, 20.0])
    assert signed_in.history.program_state == {"retro": {"sessions": 2}}
    assert (signed_in.recap.sessions, signed_in.recap.last_minutes) == (2, pytest.approx(30.0))

    writer = StoreWriter(db, runner="ana")
    writer.start()
    try:
        assert writer.history() == signed_in.history
    finally:
        writer.close(timeout=10.0)
