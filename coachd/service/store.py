"""The sessions database: SQLite in the state directory, safe against kill -9 and power cuts.

WAL journal: readers in other processes (`coachd sessions list`, `coachd report`) see
committed data while the daemon writes. Each write commits at once (with synchronous=NORMAL a
WAL commit costs no fsync), so a killed daemon loses nothing it stored; a power cut loses at
most the last moments and never the database. Times are wall-clock epoch seconds; stride and
cue times arrive as time.monotonic() and are mapped through the session's start.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from coachd.messages import Cue, Stride
from coachd.settings import ServiceSettings

DB_NAME = "sessions.sqlite"
SCHEMA_VERSION = 1
# Sessions say who ran when and how: only the daemon's user may read them.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# SQLite files beside the database; SQLite creates them with the database file's mode.
DB_SIDE_FILES = ("-wal", "-shm", "-journal")
# An installed kiosk's state directory, for `coachd sessions`/`report` run by an admin.
SYSTEM_STATE_DIR = Path("/var/lib/coachd")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    ended REAL,
    runner TEXT NOT NULL DEFAULT '',
    program TEXT NOT NULL DEFAULT '',
    summary TEXT
);
CREATE INDEX IF NOT EXISTS sessions_runner ON sessions (runner, started);
CREATE TABLE IF NOT EXISTS strides (
    session INTEGER NOT NULL REFERENCES sessions (id),
    t REAL NOT NULL,
    side TEXT NOT NULL,
    view TEXT NOT NULL,
    metrics TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS strides_session ON strides (session, t);
CREATE TABLE IF NOT EXISTS cues (
    session INTEGER NOT NULL REFERENCES sessions (id),
    t REAL NOT NULL,
    cue_id TEXT NOT NULL,
    text TEXT NOT NULL,
    kind TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cues_session ON cues (session, t);
CREATE TABLE IF NOT EXISTS program_state (
    runner TEXT NOT NULL,
    program TEXT NOT NULL,
    state TEXT NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (runner, program)
);
"""


@dataclass(frozen=True)
class SessionRow:
    id: int
    started: float
    ended: Optional[float]  # None: still running, or the daemon died before it ended
    runner: str
    program: str
    summary: dict[str, Any]
    strides: int
    cues: int

    @property
    def duration_s(self) -> float:
        return (self.ended or self.started) - self.started


@dataclass(frozen=True)
class StoredStride:
    t: float
    side: str
    view: str
    metrics: dict[str, float]


@dataclass(frozen=True)
class StoredCue:
    t: float
    cue_id: str
    text: str
    kind: str


@dataclass(frozen=True)
class SessionRecord:
    """One session with everything stored about it."""

    row: SessionRow
    strides: list[StoredStride] = field(default_factory=list)
    cues: list[StoredCue] = field(default_factory=list)


def state_directory(
    settings: ServiceSettings, environ: Optional[Mapping[str, str]] = None, reading: bool = False
) -> Path:
    """service.state_dir, else systemd's $STATE_DIRECTORY, else (reading: an installed
    kiosk's /var/lib/coachd when it holds a database, else) $XDG_STATE_HOME/coachd."""
    env = os.environ if environ is None else environ
    if settings.state_dir:
        return Path(settings.state_dir)
    if env.get("STATE_DIRECTORY"):
        return Path(env["STATE_DIRECTORY"].split(":")[0])
    if reading and (SYSTEM_STATE_DIR / DB_NAME).is_file():
        return SYSTEM_STATE_DIR
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "coachd"


class SessionStore:
    """Sessions, strides, cues and program progress. One writer thread; any number of readers
    in other processes. `readonly` opens without creating or repairing anything."""

    def __init__(self, path: Path, readonly: bool = False, busy_timeout_s: float = 5.0) -> None:
        """Raises OSError when the folder or file cannot be made, sqlite3.Error when SQLite
        cannot open, lock or read it; `busy_timeout_s` bounds each wait for another's lock."""
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.Lock()
        self._t0: dict[int, tuple[float, float]] = {}  # session -> (monotonic, wall) at start
        if readonly:
            if not self.path.is_file():
                raise FileNotFoundError(f"no sessions database at {self.path}")
            uri = f"file:{self.path}?mode=ro"
            self._db = sqlite3.connect(
                uri, uri=True, check_same_thread=False, timeout=busy_timeout_s
            )
        else:
            create_private_file(self.path)
            self._db = sqlite3.connect(
                str(self.path),
                check_same_thread=False,
                timeout=busy_timeout_s,
                isolation_level=None,
            )
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                self._close_interrupted()
            except sqlite3.Error:
                self._db.close()
                raise
        self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")

    # --- writing (the daemon's one thread) -------------------------------------------

    def start_session(
        self,
        runner: Optional[str] = None,
        program: str = "free",
        t0: Optional[float] = None,
        started: Optional[float] = None,
        wanted_id: Optional[int] = None,
    ) -> int:
        """A new session; `t0` is its start in time.monotonic() (default now), `started` the
        same moment on the wall clock (default: derived from t0). Returns its id: `wanted_id`
        when that id is free, else the next one."""
        now_mono = time.monotonic()
        t0 = now_mono if t0 is None else t0
        if started is None:
            started = time.time() - (now_mono - t0)
        if wanted_id is not None and self._session_exists(wanted_id):
            wanted_id = None
        cur = self._write(
            "INSERT INTO sessions (id, started, runner, program) VALUES (?, ?, ?, ?)",
            (wanted_id, started, runner or "", program),
        )
        session_id = int(cur.lastrowid or 0)
        self._t0[session_id] = (t0, started)
        return session_id

    def add_stride(self, session_id: int, stride: Stride) -> None:
        metrics = {k: v for k, v in stride.metrics.items() if _finite(v)}
        self._write(
            "INSERT INTO strides (session, t, side, view, metrics) VALUES (?, ?, ?, ?, ?)",
            (
                session_id,
                self._wall(session_id, stride.t),
                stride.side,
                stride.view,
                json.dumps(metrics),
            ),
        )

    def add_cue(self, session_id: int, cue: Cue) -> None:
        self._write(
            "INSERT INTO cues (session, t, cue_id, text, kind) VALUES (?, ?, ?, ?, ?)",
            (session_id, self._wall(session_id, cue.t_emit), cue.cue_id, cue.text, cue.kind),
        )

    def end_session(
        self,
        session_id: int,
        summary: Optional[Mapping[str, Any]] = None,
        t_end: Optional[float] = None,
        ended: Optional[float] = None,
    ) -> None:
        """Close a session at `t_end` (time.monotonic()) or `ended` (wall clock); by default
        at its start plus the summary's duration_s (the runner left before the summary was
        said), else now."""
        summary = dict(summary or {})
        t0 = self._t0.pop(session_id, None)
        if ended is not None:
            pass
        elif t_end is not None and t0 is not None:
            ended = t0[1] + (t_end - t0[0])
        elif t0 is not None and _finite(summary.get("duration_s")):
            ended = t0[1] + float(summary["duration_s"])
        else:
            ended = time.time()
        self._write(
            "UPDATE sessions SET ended = ?, summary = ? WHERE id = ?",
            (ended, json.dumps(summary), session_id),
        )

    def set_program_state(self, runner: str, program: str, state: Mapping[str, Any]) -> None:
        self._write(
            "INSERT INTO program_state (runner, program, state, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (runner, program) DO UPDATE SET state = excluded.state, "
            "updated = excluded.updated",
            (runner, program, json.dumps(dict(state)), time.time()),
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def next_session_id(self) -> int:
        """The id the next new session gets."""
        with self._lock:
            row = self._db.execute("SELECT coalesce(max(id), 0) + 1 FROM sessions").fetchone()
        return int(row[0])

    def _session_exists(self, session_id: int) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,))
            return row.fetchone() is not None

    def _write(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        if self.readonly:
            raise PermissionError(f"{self.path} was opened read-only")
        with self._lock:
            return self._db.execute(sql, params)  # autocommit: durable once it returns

    def _wall(self, session_id: int, t: float) -> float:
        t0 = self._t0.get(session_id)
        if t0 is None:  # a session started by another store object: assume t is recent
            return time.time() - (time.monotonic() - t)
        return t0[1] + (t - t0[0])

    def _close_interrupted(self) -> None:
        """Sessions left open by a crash end at their last stride or cue."""
        self._db.execute(
            "UPDATE sessions SET ended = max(started, coalesce("
            "(SELECT max(t) FROM strides WHERE session = sessions.id), started), coalesce("
            "(SELECT max(t) FROM cues WHERE session = sessions.id), started)), "
            "summary = coalesce(summary, '{\"interrupted\": true}') WHERE ended IS NULL"
        )

    # --- reading ---------------------------------------------------------------------

    def list_sessions(
        self, runner: Optional[str] = None, limit: Optional[int] = None
    ) -> list[SessionRow]:
        """Newest first."""
        sql = (
            "SELECT s.id, s.started, s.ended, s.runner, s.program, s.summary, "
            "(SELECT count(*) FROM strides WHERE session = s.id), "
            "(SELECT count(*) FROM cues WHERE session = s.id) FROM sessions s"
        )
        params: list[Any] = []
        if runner is not None:
            sql += " WHERE s.runner = ?"
            params.append(runner)
        sql += " ORDER BY s.started DESC, s.id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [_session_row(r) for r in rows]

    def load_session(self, session_id: int) -> SessionRecord:
        """Everything about one session; LookupError when there is no such session."""
        with self._lock:
            head = self._db.execute(
                "SELECT s.id, s.started, s.ended, s.runner, s.program, s.summary, "
                "(SELECT count(*) FROM strides WHERE session = s.id), "
                "(SELECT count(*) FROM cues WHERE session = s.id) FROM sessions s WHERE s.id = ?",
                (session_id,),
            ).fetchone()
            if head is None:
                raise LookupError(f"no session {session_id} in {self.path}")
            strides = self._db.execute(
                "SELECT t, side, view, metrics FROM strides WHERE session = ? ORDER BY t",
                (session_id,),
            ).fetchall()
            cues = self._db.execute(
                "SELECT t, cue_id, text, kind FROM cues WHERE session = ? ORDER BY t",
                (session_id,),
            ).fetchall()
        return SessionRecord(
            _session_row(head),
            [StoredStride(t, side, view, json.loads(m)) for t, side, view, m in strides],
            [StoredCue(*c) for c in cues],
        )

    def weekly_minutes(self, runner: str, now: Optional[float] = None, weeks_ago: int = 0) -> float:
        """Minutes of sessions `runner` started in the 7 days ending `weeks_ago` weeks before
        `now` (wall clock): the 10%-a-week load rule compares this week with the last."""
        end = (time.time() if now is None else now) - weeks_ago * 7 * 86400.0
        start = end - 7 * 86400.0
        with self._lock:
            row = self._db.execute(
                "SELECT coalesce(sum(max(0, coalesce(ended, "
                "(SELECT max(t) FROM strides WHERE session = sessions.id), started) - started)),"
                " 0) FROM sessions WHERE runner = ? AND started >= ? AND started < ?",
                (runner, start, end),
            ).fetchone()
        return float(row[0]) / 60.0

    def get_program_state(self, runner: str, program: str) -> dict[str, Any]:
        """The runner's progress in a program; {} before their first session in it."""
        with self._lock:
            row = self._db.execute(
                "SELECT state FROM program_state WHERE runner = ? AND program = ?",
                (runner, program),
            ).fetchone()
        return dict(json.loads(row[0])) if row else {}


def create_private_file(path: Path) -> None:
    """Make `path` (and its folders) readable by this user only, before SQLite opens it:
    SQLite gives its -wal and -shm files the database file's mode. OSError if it cannot."""
    make_private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & ~PRIVATE_FILE_MODE:
            os.fchmod(fd, PRIVATE_FILE_MODE)  # made by an older coachd, 0644
    finally:
        os.close(fd)


def make_private_dir(path: Path) -> None:
    """Create `path` as 0700 (parents as the umask says); OSError if it cannot."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    info = path.stat()
    # One made by an older coachd is made private; someone else's folder is left alone.
    if stat.S_IMODE(info.st_mode) & ~PRIVATE_DIR_MODE and info.st_uid == os.getuid():
        os.chmod(path, PRIVATE_DIR_MODE)


def keep_files_private() -> None:
    """Everything this process creates from now on (database, recordings, voice cache) is
    its user's only, however it was started (make run, a user unit, systemd's UMask)."""
    os.umask(os.umask(0o077) | 0o077)


def quick_check(path: Path, busy_timeout_s: float = 5.0) -> Optional[str]:
    """None when the database at `path` is sound (or not there yet), else what is wrong.
    sqlite3.OperationalError when it cannot be checked now (locked, unreadable)."""
    if not path.is_file() or path.stat().st_size == 0:
        return None
    db = sqlite3.connect(str(path), timeout=busy_timeout_s)
    try:
        rows = db.execute("PRAGMA quick_check(5)").fetchall()
    except sqlite3.DatabaseError as exc:  # not a database, a malformed header
        if isinstance(exc, sqlite3.OperationalError):
            raise
        return str(exc)
    finally:
        db.close()
    problems = [str(row[0]) for row in rows]
    return None if problems == ["ok"] else "; ".join(problems)


def move_aside(path: Path, why: str = "corrupt") -> Path:
    """Rename the database and its side files to `<name>.<why>-<time>`; nothing is
    deleted. Returns the new name of the database file. OSError if it cannot."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{why}-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{why}-{stamp}-{n}")
    for suffix in DB_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    path.rename(target)
    return target


def _session_row(row: tuple[Any, ...]) -> SessionRow:
    summary = json.loads(row[5]) if row[5] else {}
    return SessionRow(
        id=int(row[0]),
        started=float(row[1]),
        ended=None if row[2] is None else float(row[2]),
        runner=row[3],
        program=row[4],
        summary=summary if isinstance(summary, dict) else {},
        strides=int(row[6]),
        cues=int(row[7]),
    )


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
