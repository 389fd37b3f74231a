"""sd_notify on a real unix datagram socket, as systemd would listen."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from coachd.service.notify import Notifier


@pytest.fixture()
def listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5.0)
    yield path, sock
    sock.close()


def _receive(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_messages_arrive_as_sent(listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready("waiting for a runner")
    assert _receive(sock) == ["READY=1", "STATUS=waiting for a runner"]
    notifier.status("coaching,\n12.5 fps")
    assert _receive(sock) == ["STATUS=coaching, 12.5 fps"]  # one line, as systemd wants
    notifier.watchdog()
    assert _receive(sock) == ["WATCHDOG=1"]
    notifier.reloading()
    reloading = _receive(sock)
    assert reloading[0] == "RELOADING=1"
    assert reloading[1].startswith("MONOTONIC_USEC=") and int(reloading[1].split("=")[1]) > 0
    notifier.stopping()
    assert _receive(sock) == ["STOPPING=1"]
    notifier.close()


def test_abstract_namespace_socket() -> None:
    name = f"coachd-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5.0)
    try:
        notifier = Notifier.from_environment({"NOTIFY_SOCKET": "@" + name})
        notifier.ready()
        assert _receive(sock) == ["READY=1"]
    finally:
        sock.close()


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier.from_environment({})
    assert not notifier.enabled
    assert not notifier.ready("x")
    assert not notifier.watchdog()
    assert notifier.watchdog_interval() is None


def test_a_vanished_socket_does_not_raise(tmp_path: Path) -> None:
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.enabled
    assert not notifier.watchdog()
    assert not notifier.watchdog()


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    pid = str(os.getpid())
    assert Notifier.from_environment({"WATCHDOG_USEC": "10000000"}).watchdog_interval() == 5.0
    interval = Notifier.from_environment(
        {"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": pid}
    ).watchdog_interval()
    assert interval == 1.5
    # Meant for another process (inherited from a parent): not ours to ping.
    other = Notifier.from_environment({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval() is None
    for bad in ("", "0", "-5", "ten"):
        assert Notifier.from_environment({"WATCHDOG_USEC": bad}).watchdog_interval() is None


def test_a_child_process_notifies_through_the_environment(
    listener: tuple[str, socket.socket],
) -> None:
    """The way systemd starts the daemon: only environment variables connect the two."""
    path, sock = listener
    code = (
        "from coachd.service.notify import Notifier\n"
        "n = Notifier.from_environment()\n"
        "print(n.watchdog_interval())\n"
        "n.ready('up'); n.watchdog(); n.stopping()\n"
    )
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="8000000")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "4.0"
    assert _receive(sock) == ["READY=1", "STATUS=up"]
    assert _receive(sock) == ["WATCHDOG=1"]
    assert _receive(sock) == ["STOPPING=1"]
