"""The sessions database: SQLite in the state directory, safe against kill -9 and power cuts.

WAL journal: readers in other processes (`coachd sessions list`, `coachd report`) see
committed data while the daemon writes. Each write commits at once (with synchronous=NORMAL a
WAL commit costs no fsync), so a killed daemon loses nothing it stored; a power cut loses at
most the last moments and never the database. Times are wall-clock epoch seconds; stride and
cue times arrive as time.monotonic() and are mapped through the session's start.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import stat
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from coachd.messages import Cue, Stride
from coachd.service.schema import LATEST, VERSION_TABLE, apply_migrations, forget_runner
from coachd.settings import ServiceSettings

DB_NAME = "sessions.sqlite"
# Sessions say who ran when and how: only the daemon's user may read them.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# SQLite files beside the database; SQLite creates them with the database file's mode.
DB_SIDE_FILES = ("-wal", "-shm", "-journal")
# An installed kiosk's state directory, for `coachd sessions`/`report` run by an admin.
SYSTEM_STATE_DIR = Path("/var/lib/coachd")
WEEK_S = 7 * 86400.0

_HEAD = (
    "SELECT s.id, s.started, s.ended, s.runner, s.program, s.summary, "
    "(SELECT count(*) FROM strides WHERE session = s.id), "
    "(SELECT count(*) FROM cues WHERE session = s.id) FROM sessions s"
)


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


@dataclass(frozen=True)
class RunnerRow:
    """A runner known by the keyed hash of their QR code (or a configured profile name)."""

    runner: str  # the key sessions are filed under
    name: str
    created: float


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


class HistoryReader:
    """What coachd reads from a sessions history, the same on SQLite and PostgreSQL: the
    queries are written once with `?` placeholders and run by the subclass's `_rows`."""

    where = "sessions history"

    def close(self) -> None:
        """Let go of the database."""

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def list_sessions(
        self, runner: Optional[str] = None, limit: Optional[int] = None
    ) -> list[SessionRow]:
        """Newest first."""
        sql = _HEAD
        params: list[Any] = []
        if runner is not None:
            sql += " WHERE s.runner = ?"
            params.append(runner)
        sql += " ORDER BY s.started DESC, s.id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_session_row(r) for r in self._rows(sql, params)]

    def load_session(self, session_id: int) -> SessionRecord:
        """Everything about one session; LookupError when there is no such session."""
        head = self._rows(_HEAD + " WHERE s.id = ?", (session_id,))
        if not head:
            raise LookupError(f"no session {session_id} in {self.where}")
        strides = self._rows(
            "SELECT t, side, view, metrics FROM strides WHERE session = ? ORDER BY t",
            (session_id,),
        )
        cues = self._rows(
            "SELECT t, cue_id, text, kind FROM cues WHERE session = ? ORDER BY t",
            (session_id,),
        )
        return SessionRecord(
            _session_row(head[0]),
            [StoredStride(t, side, view, json.loads(m)) for t, side, view, m in strides],
            [StoredCue(*c) for c in cues],
        )

    def weekly_minutes(self, runner: str, now: Optional[float] = None, weeks_ago: int = 0) -> float:
        """Minutes of sessions `runner` started in the 7 days ending `weeks_ago` weeks before
        `now` (wall clock): the 10%-a-week load rule compares this week with the last."""
        end = (time.time() if now is None else now) - weeks_ago * WEEK_S
        rows = self._rows(
            "SELECT coalesce(sum(CASE WHEN e > started THEN e - started ELSE 0 END), 0) FROM "
            "(SELECT started, coalesce(ended, (SELECT max(t) FROM strides "
            "WHERE session = sessions.id), started) AS e FROM sessions "
            "WHERE runner = ? AND started >= ? AND started < ?) AS recent",
            (runner, end - WEEK_S, end),
        )
        return float(rows[0][0]) / 60.0

    def get_program_state(self, runner: str, program: str) -> dict[str, Any]:
        """The runner's progress in a program; {} before their first session in it."""
        rows = self._rows(
            "SELECT state FROM program_state WHERE runner = ? AND program = ?", (runner, program)
        )
        return dict(json.loads(rows[0][0])) if rows else {}

    def find_runner(self, runner: str) -> Optional[RunnerRow]:
        rows = self._rows("SELECT runner, name, created FROM runners WHERE runner = ?", (runner,))
        return RunnerRow(*rows[0]) if rows else None

    def list_runners(self) -> list[RunnerRow]:
        rows = self._rows("SELECT runner, name, created FROM runners ORDER BY name, created")
        return [RunnerRow(*r) for r in rows]

    def resolve_runner(self, name: str) -> str:
        """The key sessions of the runner called `name` are filed under (`name` itself for a
        configured profile); LookupError when two runners share the name."""
        rows = self._rows("SELECT runner FROM runners WHERE name = ?", (name,))
        if len(rows) > 1:
            raise LookupError(f"{len(rows)} runners are called {name!r}; rename one first")
        return str(rows[0][0]) if rows else name


class SessionStore(HistoryReader):
    """Sessions, strides, cues and program progress. One writer thread; any number of readers
    in other processes. `readonly` opens without creating or repairing anything."""

    def __init__(
        self,
        path: Path,
        readonly: bool = False,
        busy_timeout_s: float = 5.0,
        recover: bool = True,
    ) -> None:
        """Raises OSError when the folder or file cannot be made, sqlite3.Error when SQLite
        cannot open, lock or read it; `busy_timeout_s` bounds each wait for another's lock.
        A writable open brings the schema up to date; `recover` also closes the sessions a
        crash left open: the daemon's writer does, a connection beside it must not."""
        self.path = Path(path)
        self.where = str(self.path)
        self.readonly = readonly
        self._lock = threading.Lock()
        self._t0: dict[int, tuple[float, float]] = {}  # session -> (monotonic, wall) at start
        self._next_idx: dict[tuple[str, int], int] = {}  # (table, session) -> next number
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
                self._migrate()
                if recover:
                    self._close_interrupted()
            except sqlite3.Error:
                self._db.close()
                raise
        self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")

    def _migrate(self) -> None:
        """Apply the schema's migrations this database has not had, in one transaction
        (none, and no write lock, when user_version says all are in)."""
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version >= LATEST:
            return
        self._db.execute(VERSION_TABLE)
        with self._write_transaction():
            applied = {v for (v,) in self._db.execute("SELECT version FROM schema_version")}
            apply_migrations(self._db.execute, "local", applied)
        self._db.execute(f"PRAGMA user_version={LATEST}")

    @contextlib.contextmanager
    def _write_transaction(self) -> Iterator[None]:
        """Statements that stand or fall together, holding SQLite's write lock from the start."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, tuple(params)).fetchall())

    def _knows_runners(self) -> bool:
        """False only in a database older than runners opened read-only (the others are
        migrated when opened)."""
        return bool(
            self._rows(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", ("runners",)
            )
        )

    def list_runners(self) -> list[RunnerRow]:
        return super().list_runners() if self._knows_runners() else []

    def find_runner(self, runner: str) -> Optional[RunnerRow]:
        return super().find_runner(runner) if self._knows_runners() else None

    def resolve_runner(self, name: str) -> str:
        return super().resolve_runner(name) if self._knows_runners() else name

    # --- writing (the daemon's one thread) -------------------------------------------

    def start_session(
        self,
        runner: Optional[str] = None,
        program: str = "free",
        t0: Optional[float] = None,
        started: Optional[float] = None,
        wanted_id: Optional[int] = None,
        kiosk: str = "",
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
            "INSERT INTO sessions (id, started, runner, program, kiosk) VALUES (?, ?, ?, ?, ?)",
            (wanted_id, started, runner or "", program, kiosk),
        )
        session_id = int(cur.lastrowid or 0)
        self._t0[session_id] = (t0, started)
        return session_id

    def resume_session(self, session_id: int, t0: float, started: float) -> None:
        """Map times of a session started by an earlier process (t0 in its monotonic clock)."""
        self._t0[session_id] = (t0, started)

    def set_session_runner(self, session_id: int, runner: str) -> None:
        """File a session under the runner who signed in after it began."""
        self._write("UPDATE sessions SET runner = ? WHERE id = ?", (runner, session_id))

    def add_stride(self, session_id: int, stride: Stride) -> None:
        metrics = {k: v for k, v in stride.metrics.items() if _finite(v)}
        wall = self._wall(session_id, stride.t)
        self._add_numbered(
            "strides",
            session_id,
            {"t": wall, "side": stride.side, "view": stride.view, "metrics": json.dumps(metrics)},
        )

    def add_cue(self, session_id: int, cue: Cue) -> None:
        wall = self._wall(session_id, cue.t_emit)
        self._add_numbered(
            "cues",
            session_id,
            {"t": wall, "cue_id": cue.cue_id, "text": cue.text, "kind": cue.kind},
        )

    def _add_numbered(self, table: str, session_id: int, values: Mapping[str, Any]) -> None:
        """A stride or cue, numbered within its session (the server's key for it)."""
        columns = ", ".join(["session", "idx", *values])
        marks = ", ".join("?" * (len(values) + 2))
        number = self._number(table, session_id)
        self._write(
            f"INSERT INTO {table} ({columns}) VALUES ({marks})",
            (session_id, number, *values.values()),
        )
        self._next_idx[(table, session_id)] = number + 1

    def _number(self, table: str, session_id: int) -> int:
        """The next stride's or cue's number in its session."""
        key = (table, session_id)
        if key not in self._next_idx:
            rows = self._rows(
                f"SELECT coalesce(max(idx), -1) + 1 FROM {table} WHERE session = ?", (session_id,)
            )
            self._next_idx[key] = int(rows[0][0])
        return self._next_idx[key]

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
        self._next_idx.pop(("strides", session_id), None)
        self._next_idx.pop(("cues", session_id), None)

    def set_program_state(self, runner: str, program: str, state: Mapping[str, Any]) -> None:
        self._write(
            "INSERT INTO program_state (runner, program, state, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (runner, program) DO UPDATE SET state = excluded.state, "
            "updated = excluded.updated",
            (runner, program, json.dumps(dict(state)), time.time()),
        )

    # --- runners (the daemon's writer thread, or `coachd runners`) --------------------

    def add_runner(self, runner: str, name: str, created: Optional[float] = None) -> RunnerRow:
        """Know a runner (keep the one already known under this key)."""
        row = RunnerRow(runner, name, time.time() if created is None else created)
        self._write(
            "INSERT INTO runners (runner, name, created) VALUES (?, ?, ?) "
            "ON CONFLICT (runner) DO NOTHING",
            (row.runner, row.name, row.created),
        )
        return self.find_runner(runner) or row

    def rename_runner(self, runner: str, name: str) -> bool:
        cur = self._write("UPDATE runners SET name = ? WHERE runner = ?", (name, runner))
        return cur.rowcount > 0

    def forget_runner(self, runner: str) -> int:
        """Delete the runner and their whole history; how many sessions went."""
        if self.readonly:
            raise PermissionError(f"{self.path} was opened read-only")
        with self._lock, self._write_transaction():
            return forget_runner(self._db.execute, "local", runner)

    # --- the upload queue (the uploader's thread) --------------------------------------

    def source_id(self) -> str:
        """This database's own name (made once): a server tells its sessions from those of
        a database that replaced it."""
        rows = self._rows("SELECT value FROM meta WHERE name = 'source'")
        if rows:
            return str(rows[0][0])
        self._write(
            "INSERT INTO meta (name, value) VALUES ('source', ?) ON CONFLICT (name) DO NOTHING",
            (uuid.uuid4().hex,),
        )
        return str(self._rows("SELECT value FROM meta WHERE name = 'source'")[0][0])

    def sessions_to_upload(self) -> list[int]:
        """Sessions the server does not have all of yet, oldest first."""
        rows = self._rows(
            "SELECT s.id FROM sessions s LEFT JOIN uploads u ON u.session = s.id "
            "WHERE u.session IS NULL OR u.ended = 0 ORDER BY s.id"
        )
        return [int(r[0]) for r in rows]

    def upload_batch(self, session_id: int, limit: int) -> UploadBatch:
        """The session's head and up to `limit` of its strides and of its cues that the
        server does not have yet."""
        head = self._rows(
            "SELECT started, ended, runner, program, summary, kiosk FROM sessions WHERE id = ?",
            (session_id,),
        )[0]
        done = self._rows("SELECT strides, cues FROM uploads WHERE session = ?", (session_id,)) or [
            (0, 0)
        ]
        strides = self._rows(
            "SELECT idx, t, side, view, metrics FROM strides WHERE session = ? AND idx >= ? "
            "ORDER BY idx LIMIT ?",
            (session_id, done[0][0], limit),
        )
        cues = self._rows(
            "SELECT idx, t, cue_id, text, kind FROM cues WHERE session = ? AND idx >= ? "
            "ORDER BY idx LIMIT ?",
            (session_id, done[0][1], limit),
        )
        # An ended session gets nothing more: the batch that empties it is its last.
        final = head[1] is not None and len(strides) < limit and len(cues) < limit
        return UploadBatch(session_id, head, strides, cues, final)

    def mark_uploaded(self, batch: UploadBatch) -> None:
        """The server has everything in `batch` (committed there)."""
        strides = batch.strides[-1][0] + 1 if batch.strides else None
        cues = batch.cues[-1][0] + 1 if batch.cues else None
        self._write(
            "INSERT INTO uploads (session, strides, cues, ended) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (session) DO UPDATE SET "
            "strides = coalesce(?, strides), cues = coalesce(?, cues), ended = excluded.ended",
            (batch.session, strides or 0, cues or 0, int(batch.final), strides, cues),
        )

    def upload_backlog(self) -> int:
        """Strides stored here that the server does not have yet."""
        rows = self._rows(
            "SELECT coalesce(sum((SELECT count(*) FROM strides WHERE session = s.id) "
            "- coalesce(u.strides, 0)), 0) FROM sessions s LEFT JOIN uploads u "
            "ON u.session = s.id WHERE u.session IS NULL OR u.ended = 0"
        )
        return int(rows[0][0])

    def program_states(self, after: float = 0.0) -> list[tuple[str, str, str, float]]:
        """Programme progress saved after `after` (wall clock)."""
        return [
            (str(a), str(b), str(c), float(d))
            for a, b, c, d in self._rows(
                "SELECT runner, program, state, updated FROM program_state WHERE updated > ?",
                (after,),
            )
        ]

    def runners_created(self, after: float = 0.0) -> list[RunnerRow]:
        rows = self._rows(
            "SELECT runner, name, created FROM runners WHERE created > ? ORDER BY created",
            (after,),
        )
        return [RunnerRow(*r) for r in rows]

    def meta_value(self, name: str, default: str = "") -> str:
        rows = self._rows("SELECT value FROM meta WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else default

    def set_meta(self, name: str, value: str) -> None:
        self._write(
            "INSERT INTO meta (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def next_session_id(self) -> int:
        """The id the next new session gets."""
        return int(self._rows("SELECT coalesce(max(id), 0) + 1 FROM sessions")[0][0])

    def _session_exists(self, session_id: int) -> bool:
        return bool(self._rows("SELECT 1 FROM sessions WHERE id = ?", (session_id,)))

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


@dataclass(frozen=True)
class UploadBatch:
    """Part of one local session for the server: its head (started, ended, runner, program,
    summary, kiosk) and numbered strides (idx, t, side, view, metrics) and cues (idx, t,
    cue_id, text, kind); `final` when the server has all of the session after it."""

    session: int
    head: tuple[Any, ...]
    strides: list[tuple[Any, ...]]
    cues: list[tuple[Any, ...]]
    final: bool


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
