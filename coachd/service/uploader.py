"""Ships the kiosk's sessions to the gym's server: its own thread, its own SQLite connection.

The kiosk's SQLite database is the queue: the store writer puts everything there first, so a
kiosk that cannot reach the server keeps coaching and loses nothing. Each pass uploads what
the server lacks (runners, sessions, strides and cues in numbered batches, programme progress)
and then marks it uploaded locally; a pass cut off between the two sends the batch again and
the server keeps it once (server_store.ServerStore.upload).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from coachd.service.server_store import ServerStore, ServerUnavailable
from coachd.service.store import SessionStore

log = logging.getLogger(__name__)

BATCH = 500  # strides (and cues) a transaction
RETRY_MAX_S = 30.0
# Meta entries: the newest runner and programme progress the server has from here.
RUNNERS_MARK = "runners_uploaded_until"
STATES_MARK = "program_state_uploaded_until"


@dataclass(frozen=True)
class UploadStatus:
    state: str = "ok"  # "ok" or "unreachable"
    reason: str = ""
    backlog_strides: int = 0  # stored here, not yet on the server
    last_upload: float = 0.0  # wall clock of the last pass that left nothing behind; 0: none


class Uploader:
    """Uploads every `interval_s` (at once when closing), backing off while the server is away."""

    def __init__(self, path: Path, server: ServerStore, interval_s: float) -> None:
        self.path = path
        self._server = server
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._status = UploadStatus()
        self._local: Optional[SessionStore] = None
        self._inode = 0
        self._thread = threading.Thread(target=self._run, name="coachd-upload", daemon=True)

    @property
    def status(self) -> UploadStatus:
        with self._lock:
            return self._status

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float) -> None:
        """One last pass if the server answers within `timeout`; what is left waits here."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            if self._local is not None:
                self._local.close()
            self._server.close()

    def _run(self) -> None:
        wait = self._interval_s
        while True:
            self._wake.wait(wait)
            self._wake.clear()
            stopping = self._stop.is_set()
            try:
                self.upload_once()
                wait = self._interval_s
            except ServerUnavailable as exc:
                self._set(state="unreachable", reason=str(exc))
                wait = min(max(wait * 2.0, self._interval_s), RETRY_MAX_S)
            except sqlite3.Error as exc:  # the writer reports the database's own troubles
                log.debug("upload pass could not read %s: %s", self.path, exc)
                self._drop_local()
                wait = min(max(wait * 2.0, self._interval_s), RETRY_MAX_S)
            if stopping:
                return

    def upload_once(self) -> None:
        """Everything the server lacks, now. ServerUnavailable, sqlite3.Error."""
        local = self._open_local()
        if local is None:
            return
        source = local.source_id()
        # Runners and progress new since the last pass only: a runner forgotten on the server
        # must not come back from a kiosk that knew them.
        runners_until = float(local.meta_value(RUNNERS_MARK, "0"))
        runners = local.runners_created(runners_until)
        self._server.upload_runners(runners)
        if runners:
            local.set_meta(RUNNERS_MARK, repr(runners[-1].created))
        for session in local.sessions_to_upload():
            while True:
                batch = local.upload_batch(session, BATCH)
                self._server.upload(source, batch)
                local.mark_uploaded(batch)
                if len(batch.strides) < BATCH and len(batch.cues) < BATCH:
                    break
        states = local.program_states(float(local.meta_value(STATES_MARK, "0")))
        self._server.upload_program_states(states)
        if states:
            local.set_meta(STATES_MARK, repr(max(s[3] for s in states)))
        backlog = local.upload_backlog()
        was = self.status.state
        self._set(state="ok", reason="", backlog=backlog, uploaded=time.time())
        if was != "ok":
            log.warning("sessions server %s answers again; uploads are current", self._server.where)

    def _open_local(self) -> Optional[SessionStore]:
        """The kiosk's database as the writer keeps it (reopened when it was replaced)."""
        try:
            inode = self.path.stat().st_ino
        except FileNotFoundError:
            return None
        if self._local is not None and inode != self._inode:
            self._drop_local()
        if self._local is None:
            self._local = SessionStore(self.path, recover=False)
            self._inode = inode
        return self._local

    def _drop_local(self) -> None:
        if self._local is not None:
            self._local.close()
            self._local = None

    def _set(
        self,
        state: str,
        reason: str,
        backlog: Optional[int] = None,
        uploaded: Optional[float] = None,
    ) -> None:
        with self._lock:
            old = self._status
            if state != old.state and state != "ok":
                log.error("sessions server unreachable, queueing here: %s", reason)
            self._status = UploadStatus(
                state,
                reason,
                old.backlog_strides if backlog is None else backlog,
                old.last_upload if uploaded is None else uploaded,
            )
