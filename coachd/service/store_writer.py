"""The daemon's one writer to the sessions database: coaching hands it writes and never waits.

A thread applies the writes in order through SessionStore. When the database is locked, full,
unreachable or corrupt, the writes wait in memory (bounded) and are retried with back-off,
and the store's state is there for /healthz and /metrics. A database found corrupt, at start
or while running, is moved aside (nothing is deleted) and a new one is started. Writes still
waiting when the daemon stops go to a journal file beside the database, written first thing
at the next start.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

from coachd.messages import Cue, Stride
from coachd.service.health import STORE_STATES
from coachd.service.runners import HISTORY_SESSIONS, RunnerHistory, history_of
from coachd.service.store import SessionStore, move_aside, quick_check

log = logging.getLogger(__name__)

# Each write waits this long for another process's lock before the writer backs off.
BUSY_TIMEOUT_S = 1.0
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 5.0
# Writes kept in memory while the database cannot take them: ~3 strides a second makes this
# about three hours of running, a few tens of MB at most.
MAX_PENDING = 30_000

# Writes that could not be stored before a stop, one JSON object a line.
JOURNAL_NAME = "pending-writes.jsonl"

_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_FULL, _SQLITE_IOERR = 5, 6, 13, 10
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


@dataclass(frozen=True)
class StoreStatus:
    """What the writer is doing, for /healthz and /metrics."""

    state: str = "ok"  # one of STORE_STATES
    reason: str = ""
    pending_strides: int = 0
    pending_writes: int = 0
    dropped_strides: int = 0
    dropped_cues: int = 0


@dataclass(frozen=True)
class _Start:
    key: int
    runner: str
    program: str
    t0: float  # time.monotonic()
    started: float  # the same moment on the wall clock


@dataclass(frozen=True)
class _Resume:
    """A session an earlier process stored as `db_id`, with more of it in the journal."""

    key: int
    db_id: int
    t0: float
    started: float


@dataclass(frozen=True)
class _SetRunner:
    key: int
    runner: str


@dataclass(frozen=True)
class _Stride:
    key: int
    stride: Stride


@dataclass(frozen=True)
class _Cue:
    key: int
    cue: Cue


@dataclass(frozen=True)
class _End:
    key: int
    summary: dict[str, Any]


@dataclass(frozen=True)
class _ProgramState:
    runner: str
    program: str
    state: dict[str, Any]


__all__ = ["STORE_STATES", "StoreStatus", "StoreWriter"]

_Write = Union[_Start, _Resume, _SetRunner, _Stride, _Cue, _End, _ProgramState]


class StoreFault(Exception):
    """Why the database cannot be written now: a STORE_STATES state and a reason."""

    def __init__(self, state: str, reason: str) -> None:
        super().__init__(reason)
        self.state = state
        self.reason = reason


class StoreWriter:
    """Queues session writes and applies them on its own thread.

    Session keys are given out at once, whatever the database's state: normally a session's
    key is its id in the database; when that id is taken by the time the session can be
    written (the database was replaced or unreachable), it gets the next free one."""

    def __init__(
        self, path: Path, runner: str = "", max_pending: int = MAX_PENDING, kiosk: str = ""
    ) -> None:
        self.path = path
        self.journal = path.with_name(JOURNAL_NAME)
        self._runner = runner
        self._kiosk = kiosk
        self._replaying = 0  # journal writes not yet applied
        self._max_pending = max_pending
        self._lock = threading.Condition()
        self._pending: deque[_Write] = deque()
        self._pending_strides = 0
        self._dropped_strides = 0
        self._dropped_cues = 0
        self._state = "ok"
        self._reason = ""
        self._closing = False
        self._deadline = float("inf")
        self._next_key = 1
        self._history = RunnerHistory()
        # Writer thread only:
        self._store: Optional[SessionStore] = None
        self._ids: dict[int, int] = {}  # session key -> id in the current database
        self._open: dict[int, _Start] = {}  # sessions written but not yet ended
        self._history_loaded = False
        self._started_at: dict[int, tuple[float, str]] = {}  # key -> (wall start, runner)
        self._thread = threading.Thread(target=self._run, name="coachd-store", daemon=True)

    # --- the daemon's side: never blocks on the database ------------------------------

    def start(self) -> None:
        """Open the database (one try, so a sound one is ready and its runner history
        known before coaching begins), then write from the thread."""
        self._try_open()
        self._replay_journal()
        self._thread.start()

    @property
    def status(self) -> StoreStatus:
        with self._lock:
            return StoreStatus(
                self._state,
                self._reason,
                self._pending_strides,
                len(self._pending),
                self._dropped_strides,
                self._dropped_cues,
            )

    def history(self) -> RunnerHistory:
        """The runner's sessions and program progress as last known (memory, no I/O)."""
        with self._lock:
            return self._history

    def start_session(self, runner: str, program: str, t0: float) -> int:
        """A new session starting at `t0` (time.monotonic()); its key."""
        started = time.time() - (time.monotonic() - t0)
        with self._lock:
            key = self._next_key
            self._next_key += 1
        self._put(_Start(key, runner, program, t0, started))
        return key

    def add_stride(self, key: int, stride: Stride) -> None:
        self._put(_Stride(key, stride))

    def add_cue(self, key: int, cue: Cue) -> None:
        self._put(_Cue(key, cue))

    def set_session_runner(self, key: int, runner: str) -> None:
        """The runner signed in after the session began: file it under them."""
        self._put(_SetRunner(key, runner))

    def end_session(self, key: int, summary: Mapping[str, Any]) -> None:
        self._put(_End(key, dict(summary)))

    def set_program_state(self, runner: str, program: str, state: Mapping[str, Any]) -> None:
        self._put(_ProgramState(runner, program, dict(state)))

    def close(self, timeout: float) -> None:
        """Write what waits, for at most `timeout` seconds; say what could not be written."""
        with self._lock:
            self._closing = True
            self._deadline = time.monotonic() + timeout
            self._lock.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout + BUSY_TIMEOUT_S + 1.0)
        if self._thread.is_alive():
            log.error("the store writer is stuck in a write; what waits goes to %s", self.journal)
        with self._lock:
            left, strides, reason = len(self._pending), self._pending_strides, self._reason
            if left or self._replaying:
                self._spill()
        if left:
            log.error(
                "%d writes (%d strides) could not be stored in %s before stopping (%s): "
                "kept in %s for the next start",
                left,
                strides,
                self.path,
                reason,
                self.journal,
            )
        if self._store is not None and not self._thread.is_alive():
            self._store.close()
            self._store = None

    def _put(self, write: _Write) -> None:
        with self._lock:
            if len(self._pending) >= self._max_pending:
                self._drop_one()
            self._pending.append(write)
            if isinstance(write, _Stride):
                self._pending_strides += 1
            self._remember(write)
            self._lock.notify_all()

    def _drop_one(self) -> None:
        """The queue is full: drop the oldest cue, else the oldest stride (counted)."""
        for kind in (_Cue, _Stride):
            for i, write in enumerate(self._pending):
                if isinstance(write, kind):
                    del self._pending[i]
                    if isinstance(write, _Stride):
                        self._pending_strides -= 1
                        self._dropped_strides += 1
                    else:
                        self._dropped_cues += 1
                    if self._dropped_strides + self._dropped_cues == 1:
                        log.error(
                            "%d writes wait for %s: dropping the oldest cues, then strides",
                            self._max_pending,
                            self.path,
                        )
                    return

    def _remember(self, write: _Write) -> None:
        """Keep the runner's history current in memory (caller holds the lock)."""
        if isinstance(write, _ProgramState) and write.runner == self._runner:
            states = {**self._history.program_state, write.program: write.state}
            self._history = RunnerHistory(self._history.sessions, states)
        elif isinstance(write, _End) and write.key in self._started_at:
            started, runner = self._started_at.pop(write.key)
            minutes = float(write.summary.get("duration_s") or 0.0) / 60.0
            if runner == self._runner:
                sessions = [(started, minutes), *self._history.sessions][:HISTORY_SESSIONS]
                self._history = RunnerHistory(sessions, self._history.program_state)
        elif isinstance(write, _Start):
            self._started_at[write.key] = (write.started, write.runner)

    # --- the writer thread -------------------------------------------------------------

    def _run(self) -> None:
        backoff = RETRY_FIRST_S
        while True:
            with self._lock:
                while not self._pending and not self._closing:
                    self._lock.wait()
                if not self._pending or time.monotonic() >= self._deadline:
                    return
                write = self._pending[0]
            try:
                if self._store is None and not self._try_open():
                    raise StoreFault(self._state, self._reason)
                self._apply(write)
            except StoreFault as fault:
                self._set_state(fault.state, fault.reason)
                if fault.state == "corrupt" and self._replace_corrupt():
                    continue
                backoff = self._wait(backoff)
                continue
            except Exception:  # a write no retry can fix must not stop the ones after it
                log.exception("dropping a write %s cannot take: %r", self.path, write)
            self._applied(write)
            backoff = RETRY_FIRST_S
            if self._state != "ok":
                self._set_state("ok", "")

    def _applied(self, write: _Write) -> None:
        """`write` is stored (or dropped for good): off the queue."""
        with self._lock:
            if not self._pending or self._pending[0] is not write:
                return
            self._pending.popleft()
            if isinstance(write, _Stride):
                self._pending_strides -= 1
            if self._replaying:
                self._replaying -= 1
                if not self._replaying:
                    self._journal_done()

    def _wait(self, backoff: float) -> float:
        """Sleep before the next try (shorter when closing); the next back-off."""
        until = time.monotonic() + backoff
        with self._lock:
            self._lock.wait_for(lambda: time.monotonic() >= min(until, self._deadline), backoff)
        return min(backoff * 2.0, RETRY_MAX_S)

    def _try_open(self) -> bool:
        """Open (checking its integrity first) and load the runner's history; on failure the
        state says why. Runs on the caller's thread in start(), else on the writer's."""
        try:
            try:
                problem = quick_check(self.path, BUSY_TIMEOUT_S)
                if problem is not None:
                    raise StoreFault("corrupt", f"integrity check failed: {problem[:200]}")
                store = SessionStore(self.path, busy_timeout_s=BUSY_TIMEOUT_S)
            except (sqlite3.Error, OSError) as exc:
                raise _fault(exc, self.path) from exc
        except StoreFault as fault:
            self._set_state(fault.state, fault.reason)
            if fault.state == "corrupt":
                return self._replace_corrupt()
            return False
        self._opened(store)
        return True

    def _opened(self, store: SessionStore) -> None:
        self._store = store
        self._ids.clear()
        try:
            first_free = store.next_session_id()
            if not self._history_loaded and self._runner:
                self._history = self._load_history(store)
            self._history_loaded = True
        except sqlite3.Error as exc:
            log.warning("could not read the runner's history from %s: %s", self.path, exc)
            first_free = 1
        with self._lock:
            if self._next_key == 1:
                self._next_key = first_free
            # Sessions already written to a database that was moved aside start again here.
            for start in sorted(self._open.values(), key=lambda s: s.key, reverse=True):
                self._pending.appendleft(start)
        self._open.clear()
        self._set_state("ok", "")

    def _load_history(self, store: SessionStore) -> RunnerHistory:
        """The stored history under what this process learnt before the database opened."""
        stored = history_of(store, self._runner)
        with self._lock:
            known = self._history
        sessions = [*known.sessions, *stored.sessions]
        states = {**stored.program_state, **known.program_state}
        return RunnerHistory(sessions[:HISTORY_SESSIONS], {k: v for k, v in states.items() if v})

    def _replace_corrupt(self) -> bool:
        """Move the corrupt database aside and start a new one; False if that failed."""
        if self._store is not None:
            self._store.close()
            self._store = None
        try:
            moved = move_aside(self.path)
        except OSError as exc:
            self._set_state("corrupt", f"cannot move it aside: {exc.strerror or exc}")
            return False
        log.error(
            "sessions database %s is corrupt (%s): moved it to %s and starting a new one",
            self.path,
            self._reason,
            moved,
        )
        return self._try_open()

    def _apply(self, write: _Write) -> None:
        store = self._store
        assert store is not None
        try:
            if isinstance(write, _Start):
                db_id = store.start_session(
                    write.runner,
                    write.program,
                    write.t0,
                    write.started,
                    wanted_id=write.key,
                    kiosk=self._kiosk,
                )
                if db_id != write.key:
                    log.warning("session %d is stored as %d in %s", write.key, db_id, self.path)
                self._ids[write.key] = db_id
                self._open[write.key] = write
            elif isinstance(write, _ProgramState):
                store.set_program_state(write.runner, write.program, write.state)
            elif isinstance(write, _Resume):
                self._ids[write.key] = write.db_id
                store.resume_session(write.db_id, write.t0, write.started)
            elif write.key not in self._ids:
                log.error("dropping a write for session %d, which was never started", write.key)
            elif isinstance(write, _Stride):
                store.add_stride(self._ids[write.key], write.stride)
            elif isinstance(write, _Cue):
                store.add_cue(self._ids[write.key], write.cue)
            elif isinstance(write, _SetRunner):
                store.set_session_runner(self._ids[write.key], write.runner)
            else:
                store.end_session(self._ids.pop(write.key), write.summary)
                self._open.pop(write.key, None)
        except (sqlite3.Error, OSError) as exc:
            raise _fault(exc, self.path) from exc

    # --- the journal: what a stop could not store ------------------------------------

    def _spill(self) -> None:
        """Write every waiting write to the journal (caller holds the lock)."""
        lines: list[dict[str, Any]] = []
        waiting_for = {w.key for w in self._pending if not isinstance(w, _ProgramState)}
        for key in sorted(waiting_for - {w.key for w in self._pending if isinstance(w, _Start)}):
            start = self._open.get(key)
            if key in self._ids and start is not None:
                lines.append(_journal_line(_Resume(key, self._ids[key], start.t0, start.started)))
        lines.extend(_journal_line(w) for w in self._pending)
        temporary = self.journal.with_name(self.journal.name + ".new")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                for line in lines:
                    handle.write(json.dumps(line) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.journal)
        except OSError as exc:
            log.error("could not keep the waiting writes in %s: %s", self.journal, exc)

    def _replay_journal(self) -> None:
        """Queue the journal's writes first, under new session keys."""
        try:
            text = self.journal.read_text()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.error("cannot read %s: %s", self.journal, exc)
            return
        keys: dict[int, int] = {}
        writes: list[_Write] = []
        for number, line in enumerate(text.splitlines(), 1):
            try:
                writes.append(_from_journal(json.loads(line), keys, self._new_key))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("%s line %d is not a write, skipped: %s", self.journal, number, exc)
        with self._lock:
            self._pending.extendleft(reversed(writes))
            self._pending_strides += sum(isinstance(w, _Stride) for w in writes)
            self._replaying = len(writes)
        log.warning("storing %d writes kept in %s at the last stop", len(writes), self.journal)
        if not writes:
            self._journal_done()

    def _new_key(self) -> int:
        with self._lock:
            key = self._next_key
            self._next_key += 1
        return key

    def _journal_done(self) -> None:
        try:
            self.journal.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.error("cannot remove %s: %s", self.journal, exc)

    def _set_state(self, state: str, reason: str) -> None:
        with self._lock:
            changed = state != self._state
            self._state, self._reason = state, reason
            waiting = len(self._pending)
        if not changed:
            return
        if state == "ok":
            log.warning(
                "sessions database %s is writable again; %d writes wait", self.path, waiting
            )
        else:
            log.error(
                "sessions database %s: %s: %s; coaching goes on, %d writes wait in memory and "
                "are retried",
                self.path,
                state,
                reason,
                waiting,
            )


def _journal_line(write: _Write) -> dict[str, Any]:
    fields = asdict(write)
    for kind, name in _JOURNAL_KINDS.items():
        if isinstance(write, kind):
            return {"write": name, **fields}
    raise TypeError(f"no journal form for {write!r}")


def _from_journal(line: dict[str, Any], keys: dict[int, int], new_key: Callable[[], int]) -> _Write:
    """A journal line as a write, its session key mapped to one of this process's."""
    kinds = {name: kind for kind, name in _JOURNAL_KINDS.items()}
    kind = kinds[line.pop("write")]
    if "key" in line:
        old = int(line["key"])
        if old not in keys:
            keys[old] = new_key()
        line["key"] = keys[old]
    if kind is _Stride:
        line["stride"] = Stride(**line["stride"])
    elif kind is _Cue:
        cue = dict(line["cue"])
        cue["metrics"] = tuple(cue.get("metrics", ()))
        line["cue"] = Cue(**cue)
    return kind(**line)


_JOURNAL_KINDS: dict[type, str] = {
    _Start: "start",
    _Resume: "resume",
    _SetRunner: "runner",
    _Stride: "stride",
    _Cue: "cue",
    _End: "end",
    _ProgramState: "program",
}


def _fault(exc: BaseException, path: Path) -> StoreFault:
    """Classify a storage error into a store state with a reason a person can act on."""
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return StoreFault("full", f"no space left on {path.parent}")
        where = exc.filename or path
        return StoreFault("unavailable", f"cannot use {where}: {exc.strerror or exc}")
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    text = str(exc)
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in text:
        return StoreFault("locked", f"locked by another process ({text})")
    if code == _SQLITE_FULL or "full" in text or _disk_full(path):
        return StoreFault("full", f"no space left on {path.parent} ({text})")
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "malformed" in text:
        return StoreFault("corrupt", text)
    hint = "" if os.access(path.parent, os.W_OK) else f"; {path.parent} is not writable"
    return StoreFault("unavailable", f"{text}{hint}")


def _disk_full(path: Path) -> bool:
    try:
        fs = os.statvfs(path.parent)
    except OSError:
        return False
    return fs.f_bavail * fs.f_frsize < 64 * 1024
