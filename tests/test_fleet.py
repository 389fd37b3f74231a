"""A gym's kiosks: runners sign in by QR code, one history on a real PostgreSQL server.

The server is Debian's postgresql started by the test on a unix socket in a temporary
directory (tests/pg_server.py); each kiosk is `coachd run` as a subprocess with its own state
directory (tests/daemon_harness.py), and the runner is the synthetic one holding up a QR code.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import (
    REPO,
    DaemonProcess,
    child_environment,
    coachd_command,
    healthz_json,
    require_synthetic,
    start_daemon,
    wait_until,
)
from pg_server import PgServer

from coachd.service.store import DB_NAME

CODE = "gym-member-4711"
# Strides each kiosk's run stores before the runner leaves (its QR card shown at the start).
KIOSK_A_STRIDES = 8
DEADLINE_S = 180.0  # generous: a busy machine tracks the runner slowly


@pytest.fixture
def pg() -> Iterator[PgServer]:
    server = PgServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


def kiosk_settings(pg: PgServer, kiosk: str) -> list[str]:
    return [
        f"store.url={json.dumps(pg.url)}",
        "store.upload_interval_s=0.5",
        'runners.key="the-gym-secret"',
        f"kiosk.id={json.dumps(kiosk)}",
        "service.session_start_s=2",
    ]


RUNNER_SOURCE = f"synthetic:?view=side-right&qr={CODE}&qr_seconds=4"


def greetings(daemon: DaemonProcess) -> list[str]:
    if not daemon.speech_log.is_file():
        return []
    entries = [json.loads(line) for line in daemon.speech_log.read_text().splitlines() if line]
    return [e["text"] for e in entries if e["event"] == "emitted" and e["kind"] == "greeting"]


def local_strides(daemon: DaemonProcess) -> int:
    db = daemon.state_dir / DB_NAME
    if not db.is_file():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0) as conn:
        return int(conn.execute("SELECT count(*) FROM strides").fetchone()[0])


def server_sessions(pg: PgServer, kiosk: str) -> list[tuple[object, ...]]:
    """(id, runner, ended, started, strides, distinct stride numbers) of the kiosk's sessions."""
    return pg.sql(
        "SELECT s.id, s.runner, s.ended, s.started, count(t.idx), count(DISTINCT t.idx) "
        "FROM sessions s LEFT JOIN strides t ON t.session = s.id "
        f"WHERE s.kiosk = '{kiosk}' GROUP BY s.id ORDER BY s.id"
    )


def finished(daemon: DaemonProcess) -> int:
    """The runner leaves (the kiosk is stopped, which ends the session); its exit code."""
    code = daemon.stop(timeout=60.0)
    assert code is not None, daemon.output()[-3000:]
    return code


def test_a_runner_signs_in_at_two_kiosks_and_the_server_keeps_one_history(
    tmp_path: Path, pg: PgServer
) -> None:
    require_synthetic()
    # Kiosk A: sign in by QR, run, leave.
    kiosk_a = start_daemon(tmp_path / "a", RUNNER_SOURCE, kiosk_settings(pg, "A"))
    try:
        kiosk_a.wait_ready(DEADLINE_S)
        assert wait_until(lambda: local_strides(kiosk_a) >= KIOSK_A_STRIDES, DEADLINE_S)
        assert finished(kiosk_a) == 0, kiosk_a.output()[-3000:]
    finally:
        kiosk_a.cleanup()
    assert "signed in by QR" in kiosk_a.output()
    assert any(g.startswith("Hi Runner ") for g in greetings(kiosk_a)), greetings(kiosk_a)
    assert wait_until(lambda: bool(server_sessions(pg, "A")), 10.0), kiosk_a.output()[-3000:]
    (_, runner, a_ended, a_started, a_strides, a_distinct) = server_sessions(pg, "A")[0]
    assert str(runner).startswith("qr-") and CODE not in str(runner)
    assert a_ended is not None and a_strides == a_distinct == local_strides(kiosk_a) > 0

    # Kiosk B: the same runner; the server goes away while they run, and comes back.
    kiosk_b = start_daemon(tmp_path / "b", RUNNER_SOURCE, kiosk_settings(pg, "B"))
    try:
        kiosk_b.wait_ready(DEADLINE_S)
        assert wait_until(lambda: bool(greetings(kiosk_b)), DEADLINE_S), kiosk_b.output()[-3000:]
        assert wait_until(lambda: local_strides(kiosk_b) >= 3, DEADLINE_S)
        pg.stop()
        assert wait_until(lambda: kiosk_b.metric("coachd_store_server_up") == 0.0, 20.0)
        code, health = healthz_json(kiosk_b)  # still coaching: degraded, not failing
        assert code == 200 and health["components"]["server"]["state"] == "unreachable"  # type: ignore[index]
        during_outage = local_strides(kiosk_b)
        assert wait_until(lambda: local_strides(kiosk_b) > during_outage, DEADLINE_S)
        pg.start()
        assert wait_until(lambda: kiosk_b.metric("coachd_store_server_up") == 1.0, DEADLINE_S)
        metrics = kiosk_b.metrics()
        assert metrics.get('coachd_kiosk_info{kiosk="B"}') == 1.0
        assert finished(kiosk_b) == 0, kiosk_b.output()[-3000:]
    finally:
        kiosk_b.cleanup()

    # Said at the session's start, or as soon as the code is read when that comes later.
    (greeting,) = [g for g in greetings(kiosk_b) if g.startswith("Welcome back, Runner ")]
    assert "1 session so far" in greeting
    a_minutes = (float(a_ended) - float(a_started)) / 60.0  # type: ignore[arg-type]
    assert f"{round(a_minutes)} minute" in greeting
    ((a_summary,),) = pg.sql("SELECT summary FROM sessions WHERE kiosk = 'A'")
    work_on = json.loads(str(a_summary))["work_on_text"]
    if work_on is not None:  # "Next time, work on this: ..." said at A, recalled at B
        assert f"Last time we worked on this: {work_on[:1].lower()}{work_on[1:]}." in greeting
    b_rows = server_sessions(pg, "B")
    assert len(b_rows) == 1, b_rows
    (_, b_runner, b_ended, b_started, b_strides, b_distinct) = b_rows[0]
    assert b_runner == runner and b_ended is not None
    # Every stride of B's session on the server, each once, those of the outage too.
    assert b_strides == b_distinct == local_strides(kiosk_b) > during_outage
    b_minutes = (float(b_ended) - float(b_started)) / 60.0  # type: ignore[arg-type]

    (known,) = coachd_json(pg, "runners", "list", "--json")
    assert known["sessions"] == 2
    assert known["week_minutes"] == pytest.approx(a_minutes + b_minutes, abs=0.01)
    sessions = coachd_json(pg, "sessions", "list", "--runner", known["name"], "--json")
    assert [s["runner"] for s in sessions] == [known["name"]] * 2


def coachd_json(pg: PgServer, *args: str) -> list[dict[str, Any]]:
    """What a coachd command run against the server prints as JSON."""
    done = subprocess.run(
        [*coachd_command(*args), "--set", f"store.url={json.dumps(pg.url)}"],
        cwd=REPO,
        env=child_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    answer: list[dict[str, Any]] = json.loads(done.stdout)
    return answer


def test_an_upload_sent_again_lands_once_and_a_forgotten_runner_leaves_nothing(
    tmp_path: Path, pg: PgServer
) -> None:
    from coachd.messages import Stride
    from coachd.service.server_store import ServerStore
    from coachd.service.store import SessionStore

    local = SessionStore(tmp_path / DB_NAME)
    local.add_runner("qr-abc", "Alice")
    session = local.start_session("qr-abc", t0=100.0, started=1_000.0, kiosk="A")
    for i in range(7):
        local.add_stride(session, Stride(100.0 + i, "left", "side-right", 0.3, {"i": float(i)}))
    local.end_session(session, {"duration_s": 7.0})
    server = ServerStore(pg.url)
    try:
        server.upload_runners(local.list_runners())
        first = local.upload_batch(session, 5)
        server.upload(local.source_id(), first)
        # The answer was lost: the kiosk did not mark it and sends it again, then the rest.
        server.upload(local.source_id(), local.upload_batch(session, 5))
        local.mark_uploaded(first)
        rest = local.upload_batch(session, 5)
        assert [row[0] for row in rest.strides] == [5, 6]
        server.upload(local.source_id(), rest)
        local.mark_uploaded(rest)
        assert local.sessions_to_upload() == [] and local.upload_backlog() == 0
        (row,) = server.list_sessions(server.resolve_runner("Alice"))
        assert (row.strides, row.ended) == (7, 1_007.0)
        record = server.load_session(row.id)
        assert [s.metrics["i"] for s in record.strides] == [float(i) for i in range(7)]
        assert server.forget_runner("qr-abc") == 1
        assert pg.sql("SELECT (SELECT count(*) FROM sessions) + (SELECT count(*) FROM strides)"
                      " + (SELECT count(*) FROM runners)") == [(0,)]  # fmt: skip
    finally:
        server.close()
        local.close()
