"""The sd_notify protocol: tell systemd we are ready, alive, reloading or stopping.

A datagram of newline-separated KEY=VALUE lines to the unix socket named by $NOTIFY_SOCKET
(a leading '@' means the abstract namespace). Without $NOTIFY_SOCKET (a laptop run) every
call does nothing, so the daemon can call it unconditionally.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Optional

from coachd.redact import redact

log = logging.getLogger(__name__)

# systemd reads at most this much of a status line; longer text is cut, not refused.
_STATUS_MAX = 200


class Notifier:
    """Sends sd_notify messages; never raises, because a lost message must not stop coaching."""

    def __init__(
        self,
        socket_path: Optional[str] = None,
        watchdog_usec: Optional[str] = None,
        watchdog_pid: Optional[str] = None,
    ) -> None:
        self._address = _socket_address(socket_path) if socket_path else None
        self._interval = _watchdog_interval(watchdog_usec, watchdog_pid)
        self._sock: Optional[socket.socket] = None
        self._lock = threading.Lock()  # the main thread and fault callbacks both send
        self._warned = False

    @classmethod
    def from_environment(cls, environ: Optional[Mapping[str, str]] = None) -> Notifier:
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET"), env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID"))

    @property
    def enabled(self) -> bool:
        """True when started by systemd with a notify socket."""
        return self._address is not None

    def watchdog_interval(self) -> Optional[float]:
        """Seconds between WATCHDOG=1 pings (half of WatchdogSec), or None when not asked."""
        return self._interval

    def ready(self, status: Optional[str] = None) -> bool:
        fields = ["READY=1"]
        if status is not None:
            fields.append(_status_field(status))
        return self.send(*fields)

    def status(self, text: str) -> bool:
        return self.send(_status_field(text))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def reloading(self) -> bool:
        # systemd >= 253 (Type=notify-reload) wants the monotonic time with RELOADING=1.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self, status: Optional[str] = None) -> bool:
        fields = ["STOPPING=1"]
        if status is not None:
            fields.append(_status_field(status))
        return self.send(*fields)

    def send(self, *fields: str) -> bool:
        """Send one message; True when it left, False when disabled or the socket failed."""
        if self._address is None:
            return False
        payload = "\n".join(fields).encode("utf-8", "replace")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._sock.setblocking(False)
                self._sock.sendto(payload, self._address)
            except OSError as exc:
                if not self._warned:
                    log.warning("sd_notify to %r failed: %s", self._address, exc)
                    self._warned = True
                return False
        return True

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _socket_address(path: str) -> str:
    if path.startswith("@"):
        return "\0" + path[1:]
    return path


def _status_field(text: str) -> str:
    one_line = " ".join(redact(text).split())
    return "STATUS=" + one_line[:_STATUS_MAX]


def _watchdog_interval(usec: Optional[str], pid: Optional[str]) -> Optional[float]:
    if not usec:
        return None
    try:
        micros = int(usec)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not an integer", usec)
        return None
    if micros <= 0:
        return None
    if pid:
        # The variable may have been inherited from a parent the watchdog is meant for.
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return micros / 1e6 / 2.0
