"""The health/metrics port against idle, slow, many and stuck clients.

Against the real daemon (threads read from /proc/PID/status) with its default HttpLimits, and
against the real HealthServer with small limits where reaching the defaults would be slow.
Every client here is on loopback, and every wait has a generous deadline: the machine is shared.
"""

from __future__ import annotations

import contextlib
import json
import re
import selectors
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_harness import (
    RUNNER,
    STARTUP_S,
    TIMEOUT_STOP_S,
    DaemonProcess,
    parse_metrics,
    require_synthetic,
    start_daemon,
    wait_until,
)

from coachd.service.health import ComponentHealth, HealthServer, HttpLimits, Metrics
from coachd.settings import ServiceSettings

# The server closes a connection without a full request head after HttpLimits.head_deadline_s
# (5 s); these bounds leave room for a busy machine and still catch "never".
CLOSED_WITHIN_S = 30.0
ANSWERED_WITHIN_S = 20.0
# Threads the HTTP surface may add beyond its worker pool, whatever the load.
SPARE_THREADS = 4
DAEMON_THREAD_BOUND = HttpLimits().workers + SPARE_THREADS
PARTIAL = b"GET /healthz HT"  # a request line begun and never finished
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def daemon_threads(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^Threads:\s+(\d+)$", text, re.MULTILINE)
    assert match, f"no Threads: in /proc/{pid}/status"
    return int(match.group(1))


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=ANSWERED_WITHIN_S)


def read_until_closed(sock: socket.socket, within_s: float) -> tuple[bool, bytes]:
    """(the server closed the connection within `within_s`, what it sent before)."""
    sock.settimeout(within_s)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    except socket.timeout:
        return False, data
    return True, data


def read_all(socks: list[socket.socket], within_s: float) -> list[tuple[bool, bytes]]:
    """read_until_closed for many sockets at once, on this one thread."""
    results: list[tuple[bool, bytes]] = [(False, b"")] * len(socks)
    with selectors.DefaultSelector() as sel:
        for i, sock in enumerate(socks):
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ, i)
        open_left = len(socks)

        def step() -> bool:
            nonlocal open_left
            for key, _ in sel.select(timeout=0.2):
                i, sock = key.data, key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    results[i] = (False, results[i][1] + chunk)
                else:
                    results[i] = (True, results[i][1])
                    sel.unregister(sock)
                    open_left -= 1
            return open_left == 0

        wait_until(step, within_s, step=0.0)
    return results


def status_of(response: bytes) -> int:
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", response)
    return int(match.group(1)) if match else 0


def frames_tracked(d: DaemonProcess) -> float:
    return d.metric("coachd_frames_tracked_total", -1.0)


def assert_still_coaching(d: DaemonProcess) -> None:
    before = frames_tracked(d)
    assert before >= 0, d.output()[-3000:]
    assert wait_until(lambda: frames_tracked(d) > before, 30.0, step=0.5), d.output()[-3000:]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """One coaching daemon for the module: its start is the slow part."""
    require_synthetic()
    d = start_daemon(tmp_path_factory.mktemp("http-faults"), RUNNER)
    try:
        d.wait_ready(STARTUP_S)
        assert wait_until(lambda: d.healthz() == 200, STARTUP_S), d.output()[-3000:]
        yield d
    finally:
        d.stop()
        d.cleanup()


def test_healthz_reports_each_component_ok_while_coaching(daemon: DaemonProcess) -> None:
    def all_ok() -> bool:
        status, body = daemon.http("/healthz")
        return status == 200 and json.loads(body)["status"] == "ok"

    assert wait_until(all_ok, 30.0), daemon.http("/healthz")
    status, body = daemon.http("/healthz")
    report = json.loads(body)
    assert status == 200, report
    assert set(report["components"]) == {"camera", "pose", "audio", "store"}
    assert all(c == {"state": "ok"} for c in report["components"].values()), report


def test_an_idle_connection_is_closed_by_the_server(daemon: DaemonProcess) -> None:
    with connect(daemon.port) as idle:
        closed, data = read_until_closed(idle, CLOSED_WITHIN_S)
    assert closed, f"a connection that sent nothing was still open after {CLOSED_WITHIN_S} s"
    assert data == b"" or status_of(data) == 408, data[:200]
    dropped = daemon.metric('coachd_http_connections_dropped_total{reason="head_timeout"}', 0)
    assert dropped >= 1


def test_slow_clients_neither_starve_a_scraper_nor_take_threads(daemon: DaemonProcess) -> None:
    baseline = daemon_threads(daemon.pid)
    slow = [connect(daemon.port) for _ in range(100)]
    try:
        for sock in slow:
            sock.sendall(PARTIAL)
        # The scraper connects after all 100: by its answer the server has accepted them.
        status, body = daemon.http("/healthz", timeout=ANSWERED_WITHIN_S)
        during = daemon_threads(daemon.pid)
        assert status == 200, body
        status, body = daemon.http("/metrics", timeout=ANSWERED_WITHIN_S)
        assert status == 200
        during = max(during, daemon_threads(daemon.pid))
        assert during <= baseline + DAEMON_THREAD_BOUND, (baseline, during)
        assert parse_metrics(body.decode())["coachd_http_connections"] >= 1
        # Each slow client is let go at the head deadline, not held for as long as it likes.
        results = read_all(slow, CLOSED_WITHIN_S)
        assert all(closed for closed, _ in results), sum(not c for c, _ in results)
    finally:
        for sock in slow:
            sock.close()
    assert_still_coaching(daemon)


def test_two_hundred_clients_at_once_are_all_answered(daemon: DaemonProcess) -> None:
    baseline = daemon_threads(daemon.pid)
    clients = [connect(daemon.port) for _ in range(200)]
    try:
        # Every one connected, none has asked yet; a scraper behind them still gets through.
        assert daemon.http("/healthz", timeout=ANSWERED_WITHIN_S)[0] == 200
        held = daemon_threads(daemon.pid)
        for sock in clients:
            with contextlib.suppress(OSError):  # refused already: read_all sees it closed
                sock.sendall(REQUEST)
        results = read_all(clients, ANSWERED_WITHIN_S)
        held = max(held, daemon_threads(daemon.pid))
    finally:
        for sock in clients:
            sock.close()
    hung = sum(not closed for closed, _ in results)
    assert hung == 0, f"{hung} of 200 clients had neither an answer nor a refusal"
    statuses = [status_of(data) for _, data in results]
    assert set(statuses) <= {200, 503, 408, 0}, set(statuses)
    assert statuses.count(200) >= 100, statuses  # all fit under the default limits
    assert held <= baseline + DAEMON_THREAD_BOUND, (baseline, held)
    assert_still_coaching(daemon)


def test_the_daemon_stops_in_time_with_clients_stuck_on_it(daemon: DaemonProcess) -> None:
    """Last in the module: it stops the daemon."""
    assert_still_coaching(daemon)
    stuck = [connect(daemon.port) for _ in range(20)]
    try:
        for sock in stuck:
            sock.sendall(PARTIAL)
        assert daemon.http("/healthz", timeout=ANSWERED_WITHIN_S)[0] == 200
        assert daemon.stop(timeout=TIMEOUT_STOP_S) == 0, daemon.output()[-3000:]
    finally:
        for sock in stuck:
            sock.close()
    assert "frames tracked" in daemon.output()


# --- the HealthServer alone, with small limits -------------------------------------------


def get(srv: HealthServer, path: str = "/healthz") -> int:
    host, port = srv.address
    try:
        with urllib.request.urlopen(
            f"http://{host}:{port}{path}", timeout=ANSWERED_WITHIN_S
        ) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def test_a_full_server_closes_its_oldest_slow_clients_for_a_scraper() -> None:
    limits = HttpLimits(max_connections=8, head_deadline_s=60.0)  # only eviction frees slots
    srv = HealthServer(ServiceSettings(), Metrics(), port=0, limits=limits)
    srv.mark_frame()
    srv.start()
    before = threading.active_count()
    slow: list[socket.socket] = []
    try:
        for _ in range(20):
            sock = connect(srv.address[1])
            sock.sendall(PARTIAL)
            slow.append(sock)
        assert get(srv) == 200
        assert threading.active_count() <= before + limits.workers
        # 21 came to 8 slots: the 13 oldest slow ones were closed, with a 503.
        results = read_all(slow[:13], CLOSED_WITHIN_S)
        assert all(closed for closed, _ in results)
        assert all(status_of(data) in (503, 0) for _, data in results), results
        rendered = srv.metrics.render().decode()
        assert 'coachd_http_connections_dropped_total{reason="evicted"} 13.0' in rendered
    finally:
        for sock in slow:
            sock.close()
        srv.stop()


def test_a_trickling_client_is_closed_at_the_head_deadline() -> None:
    srv = HealthServer(ServiceSettings(), Metrics(), port=0, limits=HttpLimits(head_deadline_s=1))
    srv.start()
    try:
        with connect(srv.address[1]) as sock:
            sent = 0

            def trickle_until_closed() -> bool:
                nonlocal sent
                try:
                    sock.sendall(PARTIAL[sent % len(PARTIAL) :][:1])  # a byte at a time
                except OSError:
                    return True
                sent += 1
                return read_until_closed(sock, 0.2)[0]

            assert wait_until(trickle_until_closed, CLOSED_WITHIN_S, step=0.1)
    finally:
        srv.stop()


def test_a_stuck_handler_costs_no_threads_and_does_not_delay_stop() -> None:
    release, entered = threading.Event(), threading.Event()

    def stuck_components() -> dict[str, ComponentHealth]:
        entered.set()
        release.wait(60.0)
        return {"store": ComponentHealth()}

    limits = HttpLimits(max_connections=4, workers=1, response_deadline_s=2.0)
    srv = HealthServer(
        ServiceSettings(), Metrics(), port=0, limits=limits, components=stuck_components
    )
    srv.mark_frame()
    srv.start()
    before = threading.active_count()
    clients: list[socket.socket] = []
    try:
        for _ in range(5):
            sock = connect(srv.address[1])
            sock.sendall(REQUEST)
            clients.append(sock)
            assert wait_until(entered.is_set, ANSWERED_WITHIN_S)
        results = read_all(clients, ANSWERED_WITHIN_S)
        assert all(closed for closed, _ in results), "a client waited on a stuck handler"
        assert [status_of(data) for _, data in results] == [503] * 5, results
        assert threading.active_count() <= before + limits.workers
        port = srv.address[1]
        srv.stop()  # with the worker still stuck
        with pytest.raises(OSError):
            connect(port).close()
    finally:
        release.set()
        for sock in clients:
            sock.close()
        srv.stop()
