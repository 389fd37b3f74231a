"""Who is running: runners known by a keyed hash of their QR code, and what their history says.

A gym's members carry a QR code; coachd keeps only HMAC-SHA256(key, content), so the code
cannot be read back from any database. The key is `runners.key` (the same on every kiosk of a
gym) or, on a single kiosk or laptop, a key file made once in the state directory. Lookups go
to the gym's server when there is one and fall back to the kiosk's own database.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from coachd.coach.sessions import RunnerRecap
from coachd.errors import ConfigError
from coachd.service.server_store import ServerStore, ServerUnavailable
from coachd.service.store import (
    PRIVATE_FILE_MODE,
    HistoryReader,
    RunnerRow,
    SessionStore,
    make_private_dir,
)

log = logging.getLogger(__name__)

KEY_FILE = "runners.key"
KEY_PREFIX = "qr-"
# Kept beside programme progress: the baseline each session settled on, carried to the next.
BASELINE_STATE = "baseline"
# What a runner's next session starts from: retro drill progress and their baseline.
CARRIED_STATES = ("retro", BASELINE_STATE)
# Sessions kept for the weekly-load rule (the engine looks back four weeks).
HISTORY_SESSIONS = 120


def load_key(configured: str, state_dir: Path) -> bytes:
    """`runners.key` when set, else the state directory's key file (made 0600 at first use)."""
    if configured:
        return configured.encode()
    path = state_dir / KEY_FILE
    if not path.exists():
        make_private_dir(state_dir)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    key = path.read_text().strip()
    if not key:
        raise ConfigError(f"config error: runners key file {path} is empty; delete it or fill it")
    return key.encode()


def runner_key(key: bytes, content: str) -> str:
    """The runner's key in every database: a keyed hash of what their QR code says."""
    return KEY_PREFIX + hmac.new(key, content.encode(), hashlib.sha256).hexdigest()


def anonymous_name(runner: str) -> str:
    return f"Runner {runner[len(KEY_PREFIX) : len(KEY_PREFIX) + 4]}"


@dataclass(frozen=True)
class RunnerHistory:
    """A runner's earlier sessions (wall-clock start, minutes; newest first) and the progress
    carried to their next one (CARRIED_STATES)."""

    sessions: list[tuple[float, float]] = field(default_factory=list)
    program_state: dict[str, dict[str, Any]] = field(default_factory=dict)


def history_of(reader: HistoryReader, runner: str) -> RunnerHistory:
    """What `reader` holds of the runner's sessions and carried progress."""
    rows = reader.list_sessions(runner, limit=HISTORY_SESSIONS)
    states = {name: reader.get_program_state(runner, name) for name in CARRIED_STATES}
    return RunnerHistory(
        [(r.started, r.duration_s / 60.0) for r in rows],
        {name: state for name, state in states.items() if state},
    )


@dataclass(frozen=True)
class RunnerProfile:
    """A signed-in runner with what their history says (read once, at sign-in)."""

    runner: str
    name: str
    recap: RunnerRecap = field(default_factory=RunnerRecap)
    history: RunnerHistory = field(default_factory=RunnerHistory)


def profile_of(reader: HistoryReader, row: RunnerRow, now: Optional[float] = None) -> RunnerProfile:
    """Their recap, earlier sessions and programme progress from `reader`."""
    now = time.time() if now is None else now
    history = history_of(reader, row.runner)
    last = reader.list_sessions(row.runner, limit=1)
    work_on = last[0].summary.get("work_on_text") if last else None
    recap = RunnerRecap(
        sessions=len(history.sessions),
        last_minutes=history.sessions[0][1] if history.sessions else 0.0,
        last_work_on=str(work_on) if work_on else None,
        week_minutes=reader.weekly_minutes(row.runner, now),
        last_week_minutes=reader.weekly_minutes(row.runner, now, weeks_ago=1),
    )
    return RunnerProfile(row.runner, row.name, recap, history)


class RunnerDirectory:
    """Signs runners in: the server first (when there is one), else the kiosk's database;
    an unknown code gets a new anonymous profile in both."""

    def __init__(
        self, open_local: Callable[[], SessionStore], server: Optional[ServerStore] = None
    ) -> None:
        self._open_local = open_local
        self._server = server

    def sign_in(self, runner: str) -> RunnerProfile:
        """Raises sqlite3.Error when neither database can be read."""
        local = self._open_local()
        try:
            if self._server is not None:
                try:
                    return self._sign_in_at(self._server, runner, local)
                except ServerUnavailable as exc:
                    log.warning("signing in from this kiosk's history: %s", exc)
            return self._sign_in_at(local, runner, local)
        finally:
            local.close()

    def _sign_in_at(self, reader: HistoryReader, runner: str, local: SessionStore) -> RunnerProfile:
        row = reader.find_runner(runner)
        if row is None:
            row = self._add(runner, local)
            log.info("a new runner signed in: %s", row.name)
        return profile_of(reader, row)

    def _add(self, runner: str, local: SessionStore) -> RunnerRow:
        name = anonymous_name(runner)
        # The kiosk's copy is uploaded with its sessions when the server is away now.
        row = local.add_runner(runner, name)
        if self._server is not None:
            with contextlib.suppress(ServerUnavailable):
                row = self._server.add_runner(runner, name, row.created)
        return row


class SignedIn:
    """The runner in front of this kiosk, shared by the QR reader and the coaching thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: Optional[RunnerProfile] = None

    @property
    def current(self) -> Optional[RunnerProfile]:
        with self._lock:
            return self._current

    @property
    def signed_in(self) -> bool:
        """Someone signed in by QR."""
        with self._lock:
            return self._current is not None

    def set(self, profile: RunnerProfile) -> None:
        with self._lock:
            self._current = profile

    def clear(self) -> None:
        """The runner left: the next one signs in afresh."""
        with self._lock:
            self._current = None
