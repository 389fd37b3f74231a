"""The sessions database: crash safety under SIGKILL, readers beside a writer, the queries."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coachd.messages import Cue, Stride
from coachd.service.store import DB_NAME, SessionStore, state_directory
from coachd.settings import ServiceSettings

WRITER = """
import sys, time
from pathlib import Path
from coachd.messages import Stride
from coachd.service.store import SessionStore

store = SessionStore(Path(sys.argv[1]))
sid = store.start_session(runner="sam", program="free")
i = 0
while True:
    side = "left" if i % 2 == 0 else "right"
    stride = Stride(time.monotonic(), side, "side-left", 0.35, {"cadence_spm": 170.0, "i": i})
    store.add_stride(sid, stride)
    print(i, flush=True)  # acknowledged: add_stride has returned
    i += 1
    time.sleep(0.01)
"""


def test_sigkill_mid_session_loses_no_acknowledged_stride(tmp_path: Path) -> None:
    db = tmp_path / DB_NAME
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    acknowledged = -1
    seen_by_reader = []
    try:
        while acknowledged < 60:
            line = child.stdout.readline()
            assert line, "the writer stopped early"
            acknowledged = int(line)
            if acknowledged % 20 == 0:  # another process reads while the writer writes
                reader = SessionStore(db, readonly=True)
                seen_by_reader.append(reader.list_sessions()[0].strides)
                reader.close()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        rest = child.stdout.read()
        child.wait()
    for line in rest.split():
        acknowledged = max(acknowledged, int(line))
    assert child.returncode == -signal.SIGKILL
    assert len(seen_by_reader) >= 3 and seen_by_reader == sorted(seen_by_reader)

    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    reader = SessionStore(db, readonly=True)
    (row,) = reader.list_sessions()
    assert row.ended is None  # the daemon died mid-session
    record = reader.load_session(row.id)
    reader.close()
    numbers = [int(s.metrics["i"]) for s in record.strides]
    # Everything acknowledged is there, in order; at most the one in flight beyond it.
    assert numbers == list(range(len(numbers)))
    assert acknowledged + 1 <= len(numbers) <= acknowledged + 2
    assert record.strides[-1].t - record.strides[0].t > 0.3
    assert record.strides[-1].t <= time.time()

    # The next daemon to open it closes the interrupted session at its last stride.
    writer = SessionStore(db)
    (row,) = writer.list_sessions()
    assert row.ended == pytest.approx(record.strides[-1].t)
    assert row.summary == {"interrupted": True}
    writer.close()


def _stride(t: float, side: str = "left", **metrics: float) -> Stride:
    return Stride(t, side, "side-left", 0.35, dict(metrics))  # type: ignore[arg-type]


def test_sessions_strides_cues_and_summary_round_trip(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "s.sqlite")
    t0 = time.monotonic() - 100.0
    sid = store.start_session(runner="ana", program="cadence", t0=t0)
    store.add_stride(sid, _stride(t0 + 1.0, cadence_spm=168.0, overstride_ratio=0.2))
    store.add_stride(sid, _stride(t0 + 1.4, "right", cadence_spm=170.0, bad=float("nan")))
    store.add_cue(sid, Cue(t0 + 1.5, "overstride", "Land under your hips.", "correction"))
    store.end_session(sid, {"duration_s": 90.0, "text": "Well done."})
    record = store.load_session(sid)
    assert record.row.runner == "ana" and record.row.program == "cadence"
    assert record.row.duration_s == pytest.approx(90.0)
    assert record.row.summary["text"] == "Well done."
    assert [s.side for s in record.strides] == ["left", "right"]
    assert record.strides[1].t - record.strides[0].t == pytest.approx(0.4)
    assert record.strides[0].t - record.row.started == pytest.approx(1.0)
    assert record.strides[1].metrics == {"cadence_spm": 170.0}  # NaN is not stored
    assert record.cues[0].cue_id == "overstride" and record.cues[0].kind == "correction"
    with pytest.raises(LookupError):
        store.load_session(sid + 100)
    store.close()


def test_list_weekly_minutes_and_program_state(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "s.sqlite")
    now = time.time()
    ids = []
    sessions = (("ana", 30, 1), ("ana", 20, 3), ("ana", 25, 9), ("bo", 40, 1))
    for runner, minutes, days_ago in sessions:
        started = now - days_ago * 86400.0
        sid = store.start_session(runner=runner, started=started)
        store.end_session(sid, {"duration_s": 1.0}, ended=started + minutes * 60)
        ids.append(sid)
    assert store.weekly_minutes("ana", now=now) == pytest.approx(50.0)
    assert store.weekly_minutes("ana", now=now, weeks_ago=1) == pytest.approx(25.0)
    assert store.weekly_minutes("nobody", now=now) == 0.0
    listed = store.list_sessions(runner="ana")
    assert [r.id for r in listed] == [ids[0], ids[1], ids[2]]  # newest first
    assert len(store.list_sessions(limit=2)) == 2

    assert store.get_program_state("ana", "retro") == {}
    store.set_program_state("ana", "retro", {"sessions": 3, "interval_s": 30})
    store.set_program_state("ana", "retro", {"sessions": 4, "interval_s": 45})
    assert store.get_program_state("ana", "retro") == {"sessions": 4, "interval_s": 45}
    assert store.get_program_state("bo", "retro") == {}
    store.close()


def test_read_only_store_refuses_writes_and_missing_files(tmp_path: Path) -> None:
    SessionStore(tmp_path / "s.sqlite").close()
    reader = SessionStore(tmp_path / "s.sqlite", readonly=True)
    with pytest.raises(PermissionError):
        reader.start_session()
    reader.close()
    with pytest.raises(FileNotFoundError):
        SessionStore(tmp_path / "absent.sqlite", readonly=True)
    assert not (tmp_path / "absent.sqlite").exists()


def test_state_directory_precedence(tmp_path: Path) -> None:
    env = {"STATE_DIRECTORY": f"{tmp_path}/a:{tmp_path}/b", "XDG_STATE_HOME": str(tmp_path)}
    assert state_directory(ServiceSettings(state_dir="/srv/x"), env) == Path("/srv/x")
    assert state_directory(ServiceSettings(), env) == tmp_path / "a"
    assert state_directory(ServiceSettings(), {"XDG_STATE_HOME": str(tmp_path)}) == (
        tmp_path / "coachd"
    )


def test_a_database_from_before_runners_is_migrated_with_its_strides_numbered(
    tmp_path: Path,
) -> None:
    from coachd.service.schema import MIGRATIONS

    db = tmp_path / "old.sqlite"
    raw = sqlite3.connect(db)
    for statement in MIGRATIONS[0].sql("local"):  # the schema coachd had until now
        raw.execute(statement)
    raw.execute("PRAGMA user_version=1")
    raw.execute("INSERT INTO sessions (id, started, ended, runner) VALUES (1, 10.0, 20.0, 'ana')")
    for t in (13.0, 11.0, 12.0):
        raw.execute(
            "INSERT INTO strides (session, t, side, view, metrics) VALUES (1, ?, 'left', "
            "'side-left', '{}')",
            (t,),
        )
    raw.commit()
    raw.close()
    old_reader = SessionStore(db, readonly=True)
    assert old_reader.list_runners() == [] and old_reader.resolve_runner("ana") == "ana"
    assert old_reader.find_runner("ana") is None
    old_reader.close()

    store = SessionStore(db)
    look = sqlite3.connect(db)
    try:
        numbered = look.execute("SELECT t, idx FROM strides ORDER BY t").fetchall()
        assert numbered == [(11.0, 0), (12.0, 1), (13.0, 2)]
        versions = look.execute("SELECT version FROM schema_version").fetchall()
        assert versions == [(1,), (2,), (3,)]
        store.resume_session(1, 100.0, 10.0)
        store.add_stride(1, Stride(104.0, "right", "side-left", 0.3, {}))
        assert look.execute("SELECT max(idx) FROM strides").fetchall() == [(3,)]
        assert store.sessions_to_upload() == [1] and store.upload_backlog() == 4
    finally:
        look.close()
        store.close()
    SessionStore(db).close()  # a second open applies nothing again
