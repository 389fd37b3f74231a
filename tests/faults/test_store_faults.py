"""The sessions store's faults, through the real daemon: a locked database, a full disk, a
corrupt page (at start and while running), an unusable state folder. Coaching goes on through
each, /healthz and /metrics say what is wrong, and no measured stride is lost."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import (
    QUICK_SESSION,
    RUNNER,
    STARTUP_S,
    DaemonProcess,
    newest_session,
    require_synthetic,
    start_daemon,
    wait_until,
)
from support import run_coachd

from coachd.messages import Stride
from coachd.service.store import DB_NAME, SessionRecord, SessionStore

# Generous deadlines for a shared 2-core machine; each is a wait for a condition.
DEADLINE_S = 45.0
# How long the test holds the lock: a backup or an admin's sqlite3 shell.
LOCK_HELD_S = 8.0


def stored_strides(db: Path) -> int:
    session = newest_session(db)
    return len(session.strides) if session else 0


def store_health(daemon: DaemonProcess) -> tuple[int, str, dict[str, Any]]:
    """(HTTP status, overall status, the store component) of /healthz."""
    code, body = daemon.http("/healthz")
    if not body:
        return code, "", {}
    answer = json.loads(body)
    return code, answer["status"], answer.get("components", {}).get("store", {})


def store_state_is(daemon: DaemonProcess, state: str) -> bool:
    return store_health(daemon)[2].get("state", "ok") == state


def frames_tracked(daemon: DaemonProcess) -> float:
    return daemon.metric("coachd_frames_tracked_total", 0.0)


def coaching_goes_on(daemon: DaemonProcess, state: str) -> None:
    """Frames keep being tracked and /healthz is 200 "degraded", naming the store's state,
    which /metrics shows too."""
    before = frames_tracked(daemon)
    assert wait_until(lambda: frames_tracked(daemon) > before + 30, DEADLINE_S), daemon.output()[
        -3000:
    ]
    code, status, store = store_health(daemon)
    assert (code, status, store.get("state")) == (200, "degraded", state), store
    assert str(daemon.state_dir / DB_NAME) in store.get("reason", "")
    assert daemon.metric(f'coachd_store_state{{state="{state}"}}') == 1.0
    assert daemon.metric('coachd_store_state{state="ok"}') == 0.0


def every_stride_stored(daemon: DaemonProcess) -> SessionRecord:
    """Stop the daemon; its session's summary counts exactly the strides stored."""
    assert daemon.stop() == 0, daemon.output()[-3000:]
    record = newest_session(daemon.state_dir / DB_NAME)
    assert record is not None and record.row.ended is not None, daemon.output()[-3000:]
    assert record.row.summary["strides"] == len(record.strides) > 0
    return record


def started_daemon(workdir: Path, settings: tuple[str, ...] = (QUICK_SESSION,)) -> DaemonProcess:
    require_synthetic()
    daemon = start_daemon(workdir, RUNNER, settings)
    daemon.wait_ready(STARTUP_S)
    return daemon


@contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A small tmpfs mounted at `where` for the test's length (skips if mounting is refused)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "coachd-test", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs at {where}: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def corrupt_strides_pages(db: Path) -> None:
    """Break the strides table's and its index's root pages, as a failing disk would."""
    with sqlite3.connect(db) as raw:
        page_size = raw.execute("PRAGMA page_size").fetchone()[0]
        roots = [
            r[0]
            for r in raw.execute(
                "SELECT rootpage FROM sqlite_master WHERE tbl_name = 'strides' AND rootpage > 1"
            )
        ]
    assert roots
    with db.open("r+b") as f:
        for page in roots:
            f.seek((page - 1) * page_size)
            f.write(b"\x00" * 16)  # page type 0: no valid b-tree page


def test_a_locked_database_keeps_coaching_and_loses_no_stride(tmp_path: Path) -> None:
    daemon = started_daemon(tmp_path)
    db = daemon.state_dir / DB_NAME
    try:
        assert wait_until(lambda: stored_strides(db) >= 3, DEADLINE_S), daemon.output()[-3000:]
        locker = sqlite3.connect(db, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        locked_at = time.monotonic()
        try:
            assert wait_until(lambda: store_state_is(daemon, "locked"), DEADLINE_S), (
                daemon.output()[-3000:]
            )
            coaching_goes_on(daemon, "locked")
            assert wait_until(
                lambda: daemon.metric("coachd_store_pending_strides", 0.0) > 0, DEADLINE_S
            )
            wait_until(lambda: time.monotonic() - locked_at >= LOCK_HELD_S, LOCK_HELD_S + 1)
        finally:
            locker.rollback()
            locker.close()
        assert wait_until(lambda: store_state_is(daemon, "ok"), DEADLINE_S)
        assert wait_until(lambda: daemon.metric("coachd_store_pending_strides") == 0, DEADLINE_S)
        every_stride_stored(daemon)
    finally:
        daemon.cleanup()
    assert "locked by another process" in daemon.output()


def test_a_full_disk_keeps_coaching_and_stores_the_strides_once_there_is_room(
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "state", "size=8m,mode=0700"):
        daemon = started_daemon(tmp_path)
        db = daemon.state_dir / DB_NAME
        filler = daemon.state_dir / "filler"
        try:
            assert wait_until(lambda: stored_strides(db) >= 3, DEADLINE_S), daemon.output()[-3000:]
            with filler.open("wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass  # the disk is full
            assert wait_until(lambda: store_state_is(daemon, "full"), DEADLINE_S), daemon.output()[
                -3000:
            ]
            coaching_goes_on(daemon, "full")
            assert "no space left" in daemon.output()
            filler.unlink()
            assert wait_until(lambda: store_state_is(daemon, "ok"), DEADLINE_S)
            every_stride_stored(daemon)
        finally:
            daemon.cleanup()


def test_a_corrupt_database_is_moved_aside_at_start_and_a_new_one_begun(tmp_path: Path) -> None:
    state = tmp_path / "state"
    old = SessionStore(state / DB_NAME)
    session = old.start_session(runner="", program="free")
    for i in range(50):
        old.add_stride(session, Stride(time.monotonic(), "left", "side-right", 0.3, {"i": i}))
    old.end_session(session, {"strides": 50})
    old.close()  # the last connection checkpoints: every page is in the main file
    corrupt_strides_pages(state / DB_NAME)
    corrupt_bytes = (state / DB_NAME).read_bytes()

    daemon = started_daemon(tmp_path)
    try:
        assert wait_until(lambda: stored_strides(state / DB_NAME) >= 3, DEADLINE_S), (
            daemon.output()[-3000:]
        )
        assert store_health(daemon)[:2] == (200, "ok")
        record = every_stride_stored(daemon)
    finally:
        daemon.cleanup()
    (aside,) = state.glob(f"{DB_NAME}.corrupt-*[0-9]")
    assert aside.read_bytes() == corrupt_bytes  # nothing deleted, nothing changed
    assert f"moved it to {aside}" in daemon.output()
    assert record.row.id == 1


def test_a_page_corrupted_while_running_does_not_stop_coaching(tmp_path: Path) -> None:
    daemon = started_daemon(tmp_path)
    db = daemon.state_dir / DB_NAME
    try:
        assert wait_until(lambda: stored_strides(db) >= 3, DEADLINE_S), daemon.output()[-3000:]
        with sqlite3.connect(db) as raw:  # every page into the main file, then break two
            assert wait_until(
                lambda: raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0, 10.0
            )
        corrupt_strides_pages(db)
        # Another process's write makes the daemon drop its page cache and read the pages.
        with sqlite3.connect(db) as raw:
            raw.execute("PRAGMA user_version = 1")
        assert wait_until(lambda: any(db.parent.glob(f"{DB_NAME}.corrupt-*")), DEADLINE_S), (
            daemon.output()[-3000:]
        )
        before = frames_tracked(daemon)
        assert wait_until(lambda: frames_tracked(daemon) > before + 30, DEADLINE_S)
        assert wait_until(lambda: stored_strides(db) >= 3, DEADLINE_S), daemon.output()[-3000:]
        assert store_health(daemon)[:2] == (200, "ok")
        assert daemon.stop() == 0
    finally:
        daemon.cleanup()
    assert "is corrupt" in daemon.output() and "Traceback" not in daemon.output()


def test_an_unusable_state_folder_is_named_and_retried_while_coaching_goes_on(
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "state", "ro,size=1m"):
        daemon = started_daemon(tmp_path)
        db = daemon.state_dir / DB_NAME
        try:
            assert wait_until(lambda: store_state_is(daemon, "unavailable"), DEADLINE_S), (
                daemon.output()[-3000:]
            )
            coaching_goes_on(daemon, "unavailable")
            assert f"sessions database {db}" in daemon.output()
            assert "Read-only file system" in daemon.output()
            assert wait_until(
                lambda: daemon.metric("coachd_store_pending_strides", 0.0) > 0, DEADLINE_S
            )
            remount = ["mount", "-o", "remount,rw", str(daemon.state_dir)]
            subprocess.run(remount, check=True)
            assert wait_until(lambda: store_state_is(daemon, "ok"), DEADLINE_S)
            every_stride_stored(daemon)
        finally:
            daemon.cleanup()


def test_the_readers_name_an_unreadable_or_corrupt_database_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    with tmpfs(folder, "size=1m"):
        store = SessionStore(folder / DB_NAME)
        store.end_session(store.start_session(), {})
        store.close()  # a clean close leaves no -shm, which a reader must create
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        garbage = tmp_path / "garbage.sqlite"
        garbage.write_bytes(b"this is no database" * 300)
        for db in (folder / DB_NAME, garbage):
            for args in (["sessions", "list"], ["report", "last", "--html", "x.html"]):
                done = run_coachd(*args, "--db", str(db))
                lines = done.stderr.strip().splitlines()
                assert done.returncode == 1 and len(lines) == 1, done.stderr
                assert str(db) in lines[0] and "internal error" not in lines[0], lines[0]


def test_a_session_is_stored_from_its_first_second_in_private_files(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # a developer's shell, as `make run` inherits it
    try:
        daemon = started_daemon(tmp_path, ("service.session_start_s=3", "service.record=true"))
    finally:
        os.umask(old_umask)
    db = daemon.state_dir / DB_NAME
    try:
        assert wait_until(lambda: stored_strides(db) >= 3, DEADLINE_S), daemon.output()[-3000:]
        record = every_stride_stored(daemon)
    finally:
        daemon.cleanup()
    # The run-in counts from the first running stride: those are stored, not only the later.
    assert min(s.t for s in record.strides) - record.row.started < 1.5
    private = {daemon.state_dir: 0o700, db: 0o600, daemon.state_dir / "recordings": 0o700}
    private.update({p: 0o600 for p in daemon.state_dir.glob(f"{DB_NAME}-*")})
    private.update({p: 0o600 for p in (daemon.state_dir / "recordings").glob("*")})
    assert len(private) > 3
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in private}
    assert modes == {p.name: oct(m) for p, m in private.items()}


LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()  # held until the test closes our stdin
db.rollback()
"""


@contextmanager
def locked_by_another_process(db: Path) -> Iterator[None]:
    """An exclusive lock on `db` held by another process until the block ends."""
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline() == "locked\n"
        yield
    finally:
        assert locker.stdin is not None
        locker.stdin.close()
        locker.wait(10)


def test_the_writer_keeps_a_bounded_backlog_dropping_cues_before_strides(tmp_path: Path) -> None:
    from coachd.messages import Cue
    from coachd.service.store_writer import StoreWriter

    db = tmp_path / DB_NAME
    writer = StoreWriter(db, max_pending=20)
    writer.start()
    with locked_by_another_process(db):
        t0 = time.monotonic()
        key = writer.start_session("", "free", t0)
        writer.add_cue(key, Cue(t0, "greeting", "Hi!", "greeting"))
        for i in range(25):
            writer.add_stride(key, Stride(t0 + i, "left", "side-right", 0.3, {"i": float(i)}))
        writer.end_session(key, {"strides": 25})
        assert wait_until(lambda: writer.status.state == "locked", DEADLINE_S)
        status = writer.status
        assert (status.dropped_cues, status.dropped_strides, status.pending_writes) == (1, 7, 20)
    writer.close(timeout=DEADLINE_S)
    record = newest_session(db)
    assert record is not None and record.row.ended is not None
    assert [s.metrics["i"] for s in record.strides] == [float(i) for i in range(7, 25)]
    assert record.cues == [] and writer.status.pending_writes == 0


def test_writes_still_locked_out_at_stop_are_kept_and_stored_at_the_next_start(
    tmp_path: Path,
) -> None:
    from coachd.messages import Cue
    from coachd.service.store_writer import StoreWriter

    db = tmp_path / DB_NAME
    first = StoreWriter(db)
    first.start()
    t0 = time.monotonic()
    key = first.start_session("", "free", t0)
    first.add_stride(key, Stride(t0 + 0.5, "left", "side-right", 0.3, {"i": 0.0}))
    assert wait_until(lambda: stored_strides(db) == 1, DEADLINE_S)
    with locked_by_another_process(db):
        for i in range(1, 6):
            first.add_stride(key, Stride(t0 + i, "left", "side-right", 0.3, {"i": float(i)}))
        first.add_cue(key, Cue(t0 + 5.5, "lean", "Run tall.", "correction", metrics=("lean",)))
        first.end_session(key, {"duration_s": 6.0})
        first.close(timeout=0.2)  # the daemon stops while the database is still locked
    assert first.journal.is_file() and oct(stat.S_IMODE(first.journal.stat().st_mode)) == "0o600"

    second = StoreWriter(db)
    second.start()
    assert wait_until(lambda: not second.journal.exists(), DEADLINE_S)
    second.close(timeout=DEADLINE_S)
    record = newest_session(db)
    assert record is not None and record.row.id == 1 and record.row.ended is not None
    assert [s.metrics["i"] for s in record.strides] == [float(i) for i in range(6)]
    assert [c.text for c in record.cues] == ["Run tall."]
    # Stride times are those measured: the new process maps them through the session's start.
    assert record.strides[-1].t - record.strides[0].t == pytest.approx(4.5, abs=1e-6)
    assert record.row.ended - record.row.started == pytest.approx(6.0, abs=1e-6)
