"""A kiosk among a gym's kiosks: its id, the uploader to the gym's server, and who signed in.

The daemon owns one `KioskFleet`: it adds the QR sign-in listener to the chain, asks it which
runner a new session is filed under and how to greet them, and publishes its upload state.
With no store.url it only signs runners in against the kiosk's own database.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Callable, Optional

from coachd.coach.sessions import runner_greeting
from coachd.errors import ConfigError
from coachd.redact import redact
from coachd.service.health import ComponentHealth, Metrics
from coachd.service.qr_sign_in import QrSignIn
from coachd.service.runners import RunnerDirectory, RunnerProfile, SignedIn, load_key
from coachd.service.server_store import ServerStore, is_server_url
from coachd.service.store import SessionStore
from coachd.service.uploader import Uploader
from coachd.settings import Settings

log = logging.getLogger(__name__)

# At stop, time for a last upload (the store writer's close comes first).
UPLOAD_CLOSE_S = 2.0


def kiosk_id(settings: Settings) -> str:
    return settings.kiosk.id or socket.gethostname()


def open_server(url: str) -> Optional[ServerStore]:
    """The gym's server for store.url, None when there is none; ConfigError for a bad URL."""
    if not url:
        return None
    if not is_server_url(url):
        raise ConfigError(
            f"config error: store.url {redact(url)!r} is not allowed; give a PostgreSQL URL "
            "(postgresql://db.gym.lan/coachd?sslmode=verify-full) or nothing (this kiosk's "
            "SQLite database only)"
        )
    return ServerStore(url)


class KioskFleet:
    """This kiosk's part in the gym: uploads and sign-in (each on its own thread)."""

    def __init__(self, settings: Settings, state_dir: Path, db: Path) -> None:
        self.kiosk = kiosk_id(settings)
        self.signed_in = SignedIn()
        self._db = db
        self._server = open_server(settings.store.url)
        self._uploader = (
            Uploader(db, self._server, settings.store.upload_interval_s)
            if self._server is not None
            else None
        )
        self._configured_key = settings.runners.key
        self._state_dir = state_dir
        self._key: Optional[bytes] = None
        self._qr: Optional[QrSignIn] = None
        # A laptop's or a home treadmill's one user (service.runner_profile) needs no sign-in.
        if settings.runners.qr_sign_in and not settings.service.runner_profile:
            directory = RunnerDirectory(self._open_local, self._server)
            self._qr = QrSignIn(self._hash_key, directory, self.signed_in, self._signed_in)
        self._on_sign_in: Callable[[RunnerProfile], None] = lambda profile: None

    @property
    def qr_listener(self) -> Optional[QrSignIn]:
        return self._qr

    def start(self, on_sign_in: Callable[[RunnerProfile], None]) -> None:
        self._on_sign_in = on_sign_in
        if self._uploader is not None:
            self._uploader.start()
        if self._qr is not None:
            self._qr.start()

    def runner(self, default: str) -> str:
        """Whom a session starting now is filed under."""
        profile = self.signed_in.current
        return profile.runner if profile is not None else default

    def greeting(self) -> Optional[str]:
        """The words for a signed-in runner at a session's start; None for anyone else."""
        profile = self.signed_in.current
        return None if profile is None else runner_greeting(profile.name, profile.recap)

    def server_health(self) -> Optional[ComponentHealth]:
        """The gym's server for /healthz: None without store.url."""
        if self._uploader is None:
            return None
        status = self._uploader.status
        if status.state == "ok":
            return ComponentHealth()
        return ComponentHealth(
            status.state,
            f"{status.reason}; {status.backlog_strides} strides queued on this kiosk",
        )

    def publish(self, metrics: Metrics) -> None:
        if self._uploader is not None:
            status = self._uploader.status
            metrics.set_upload(status.state == "ok", status.backlog_strides, status.last_upload)

    def close(self) -> None:
        if self._qr is not None:
            self._qr.close()
        if self._uploader is not None:
            self._uploader.close(timeout=UPLOAD_CLOSE_S)

    def _hash_key(self) -> bytes:
        """(The QR reader's thread.) Loaded at the first code shown: an unwritable state
        folder must not keep the kiosk from coaching. OSError, ConfigError."""
        if self._key is None:
            self._key = load_key(self._configured_key, self._state_dir)
        return self._key

    def _open_local(self) -> SessionStore:
        return SessionStore(self._db, recover=False)

    def _signed_in(self, profile: RunnerProfile) -> None:
        self._on_sign_in(profile)
