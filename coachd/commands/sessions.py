"""`coachd sessions list [--runner NAME] [--json]`: the coaching sessions stored on this
machine, or on the gym's server when store.url names one."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

from coachd.commands import Command, add_json_argument, print_json, settings_from_args
from coachd.errors import CoachdError, UsageError
from coachd.service.fleet import open_server
from coachd.service.server_store import ServerStore, ServerUnavailable
from coachd.service.store import DB_NAME, HistoryReader, SessionRow, SessionStore, state_directory


def add_database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="PATH",
        help=f"sessions database (default: {DB_NAME} in the state directory: service.state_dir, "
        "$STATE_DIRECTORY, /var/lib/coachd on an installed kiosk, else ~/.local/state/coachd)",
    )


def open_database(args: argparse.Namespace) -> SessionStore:
    """The sessions database named by --db or the settings, opened read-only."""
    db: Optional[str] = getattr(args, "db", None)
    if db:
        path = Path(db)
    else:
        settings = settings_from_args(args).settings
        path = state_directory(settings.service, reading=True) / DB_NAME
    with database_errors(path):
        if not path.is_file():
            raise UsageError(
                f"no sessions database at {path}: coachd creates it when its first session "
                "starts; name another with --db PATH"
            )
        return SessionStore(path, readonly=True)


def open_history(args: argparse.Namespace) -> HistoryReader:
    """The gym's server when store.url names one (and no --db is given), else this machine's
    sessions database, read-only."""
    if not getattr(args, "db", None):
        url = settings_from_args(args).settings.store.url
        if url:
            return open_server_or_fail(url)
    return open_database(args)


def open_server_or_fail(url: str) -> ServerStore:
    server = open_server(url)
    assert server is not None
    return server


@contextmanager
def history_errors(history: HistoryReader) -> Iterator[None]:
    """An error reading a history becomes one line naming it (exit 1)."""
    if isinstance(history, SessionStore):
        with database_errors(history.path):
            yield
        return
    try:
        yield
    except ServerUnavailable as exc:
        raise CoachdError(f"cannot read the sessions server {exc}") from None


@contextmanager
def database_errors(path: Path) -> Iterator[None]:
    """An error reading the database at `path` becomes one line naming it (exit 1)."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise CoachdError(f"cannot read the sessions database {path}: {_why(exc, path)}") from None


def _why(exc: BaseException, path: Path) -> str:
    if isinstance(exc, OSError):
        return str(exc.strerror or exc)
    text = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return f"{text}: the file is damaged (coachd run moves a damaged database aside)"
    if "unable to open" in text and not os.access(path.parent, os.W_OK):
        return (
            f"{text}: its folder {path.parent} is not writable and SQLite needs to create "
            f"{path.name}-shm there; copy the database somewhere writable and use --db"
        )
    return text


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["list"], help="list: the stored sessions, newest first")
    parser.add_argument("--runner", help="only this runner's sessions")
    parser.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    add_database_argument(parser)
    add_json_argument(parser)


def session_json(row: SessionRow) -> dict[str, Any]:
    def when(t: Optional[float]) -> Optional[str]:
        # Local time with its UTC offset, as the table shows it, and unambiguous.
        return (
            None if t is None else datetime.fromtimestamp(t).astimezone().isoformat("T", "seconds")
        )

    return {
        "id": row.id,
        "started": when(row.started),
        "ended": when(row.ended),
        "duration_s": round(row.duration_s, 1),
        "runner": row.runner,
        "program": row.program,
        "strides": row.strides,
        "cues": row.cues,
        "summary": row.summary,
    }


def format_table(rows: list[SessionRow]) -> str:
    header = ("ID", "STARTED", "MINUTES", "RUNNER", "PROGRAM", "STRIDES", "CUES", "CADENCE", "")
    lines = [header]
    for row in rows:
        cadence = row.summary.get("cadence_spm")
        note = "running or crashed" if row.ended is None else ""
        if row.summary.get("interrupted"):
            note = "interrupted"
        lines.append(
            (
                str(row.id),
                time.strftime("%Y-%m-%d %H:%M", time.localtime(row.started)),
                f"{row.duration_s / 60:.1f}",
                row.runner or "-",
                row.program or "-",
                str(row.strides),
                str(row.cues),
                f"{cadence:.0f}" if isinstance(cadence, (int, float)) else "-",
                note,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines
    )


def _run(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError(f"--limit {args.limit}: must be at least 1")
    history = open_history(args)
    try:
        with history_errors(history):
            runner = None
            if args.runner is not None:
                try:
                    runner = history.resolve_runner(args.runner)
                except LookupError as exc:
                    raise UsageError(f"--runner {args.runner!r}: {exc}") from None
            rows = history.list_sessions(runner=runner, limit=args.limit)
            names = {r.runner: r.name for r in history.list_runners()}
    finally:
        history.close()
    # Runners known by their QR code show by name, never by the hash they are filed under.
    rows = [dataclasses.replace(r, runner=names.get(r.runner, r.runner)) for r in rows]
    if args.json:
        print_json([session_json(row) for row in rows])
        return 0
    if not rows:
        who = f" for runner {args.runner!r}" if args.runner else ""
        print(f"no sessions{who} in {history.where}")
        return 0
    print(format_table(rows))
    return 0


COMMAND = Command("sessions", "list the stored coaching sessions", _add_arguments, _run, 60)
