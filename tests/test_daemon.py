"""`coachd run` as a kiosk service, seen as systemd and Prometheus see it.

Each test runs the daemon as a subprocess with a real unix datagram NOTIFY_SOCKET and
WATCHDOG_USEC, its own state directory and HTTP port, and talks to it only through those:
READY/WATCHDOG/STATUS/STOPPING, /healthz, /metrics, signals, the sessions database and the
`coachd sessions`/`coachd report` commands. The helpers here are shared with
tests/test_daemon_soak.py.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest

from coachd.service.store import DB_NAME, SessionRecord, SessionStore

REPO = Path(__file__).resolve().parent.parent
ALSA_BASE = Path("/usr/share/alsa/alsa.conf")
# Environment the daemon reads besides its settings; a developer's own must not leak in.
_DAEMON_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "STATE_DIRECTORY")


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass; its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


@dataclass(frozen=True)
class Notification:
    t: float  # time.monotonic() on arrival
    fields: dict[str, str]


class NotifyListener:
    """systemd's end of sd_notify: a bound unix datagram socket recording every message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.2)
        self._lock = threading.Lock()
        self._messages: list[Notification] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="notify-listener", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            fields = dict(line.partition("=")[::2] for line in data.decode().split("\n") if line)
            with self._lock:
                self._messages.append(Notification(now, fields))

    @property
    def messages(self) -> list[Notification]:
        with self._lock:
            return list(self._messages)

    def times(self, key: str, value: Optional[str] = None) -> list[float]:
        """Arrival times of the messages carrying `key` (with `value`, when given)."""
        return [
            m.t
            for m in self.messages
            if key in m.fields and (value is None or m.fields[key] == value)
        ]

    def statuses(self, since: float = 0.0) -> list[str]:
        return [m.fields["STATUS"] for m in self.messages if "STATUS" in m.fields and m.t >= since]

    def close(self) -> None:
        self._closed.set()
        self._thread.join(1.0)
        self._sock.close()


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition -> {'name{labels}': value} (labels as written)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            values[name] = float(value)
        except ValueError:
            continue
    return values


@dataclass
class DaemonProcess:
    """One `coachd run` child with its notify socket, HTTP port and state directory."""

    proc: subprocess.Popen[bytes]
    port: int
    state_dir: Path
    notify: NotifyListener
    stdout_path: Path
    stderr_path: Path
    speech_log: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def http(self, path: str, timeout: float = 3.0) -> tuple[int, bytes]:
        """(status, body) of GET http://127.0.0.1:PORT/path; (0, b'') when nothing answers."""
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return int(response.status), response.read()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()
        except (urllib.error.URLError, OSError):
            return 0, b""

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Arrival time of READY=1; fails the test, with the daemon's output, if it exits
        first or takes longer than `timeout`."""
        wait_until(
            lambda: bool(self.notify.times("READY")) or self.proc.poll() is not None, timeout
        )
        ready = self.notify.times("READY", "1")
        if not ready:
            pytest.fail(
                f"no READY=1 within {timeout:.0f} s (exit code {self.proc.poll()}):\n"
                + self.output()[-3000:]
            )
        return ready[0]

    def healthz(self) -> int:
        return self.http("/healthz")[0]

    def metrics(self) -> dict[str, float]:
        status, body = self.http("/metrics")
        return parse_metrics(body.decode()) if status == 200 else {}

    def metric(self, name: str, default: float = float("nan")) -> float:
        return self.metrics().get(name, default)

    def rss_kb(self) -> int:
        """VmRSS of the child, from /proc/PID/status."""
        text = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
        assert match, f"no VmRSS in /proc/{self.pid}/status"
        return int(match.group(1))

    def output(self) -> str:
        """Everything the child wrote so far, stdout then stderr."""
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(
            errors="replace"
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> Optional[int]:
        """Send `sig` and wait; the exit code, or None when it is still running."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10.0)
        self.notify.close()


def coachd_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "coachd", *args]


def child_environment(extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    """The test's environment without coachd settings or systemd variables, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith("COACHD_") and k not in _DAEMON_ENV
    }
    env.update(extra or {})
    return env


def start_daemon(
    workdir: Path,
    source: str,
    settings: Sequence[str] = (),
    watchdog_usec: Optional[int] = 2_000_000,
    speech_env: Optional[dict[str, str]] = None,
) -> DaemonProcess:
    """`coachd run --source SOURCE` with its own state dir, config and port, started as
    systemd starts a Type=notify service with WatchdogSec. Speech is off unless `speech_env`
    (see alsa_file_device) gives it a device."""
    workdir.mkdir(parents=True, exist_ok=True)
    state_dir = workdir / "state"
    config = workdir / "empty.toml"  # not /etc/coachd/coachd.toml, whatever this machine has
    config.write_text("")
    port = free_port()
    listener = NotifyListener(workdir / "notify.sock")
    speech_log = workdir / "speech.jsonl"
    command = coachd_command(
        "run",
        "--config",
        str(config),
        "--source",
        source,
        *(["--no-speech"] if speech_env is None else []),
        "--quiet",
        "--speech-log",
        str(speech_log),
        "--set",
        f"service.state_dir={json.dumps(str(state_dir))}",
        "--set",
        f"service.http_port={port}",
        *[item for s in settings for item in ("--set", s)],
    )
    env = {"NOTIFY_SOCKET": str(listener.path), "PYTHONUNBUFFERED": "1", **(speech_env or {})}
    if watchdog_usec is not None:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
        # systemd sets WATCHDOG_PID to the main pid, known only after the fork: a shell
        # exports its own pid and execs coachd in its place, keeping that pid.
        exports_pid = 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"'
        command = ["/bin/sh", "-c", exports_pid, "sh", *command]
    stdout_path, stderr_path = workdir / "stdout.txt", workdir / "stderr.txt"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            command,
            cwd=REPO,
            env=child_environment(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    return DaemonProcess(proc, port, state_dir, listener, stdout_path, stderr_path, speech_log)


def alsa_file_device(workdir: Path) -> tuple[dict[str, str], Path]:
    """Environment giving a child process a default ALSA device (plug into a `file` PCM) that
    records into a raw file, and that file: real PortAudio playback with no sound card."""
    if not ALSA_BASE.is_file():
        pytest.skip("alsa-lib is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    recording = workdir / "speech.raw"
    config = workdir / "asoundrc"
    config.write_text(
        'pcm.!default { type plug; slave.pcm "coachtest" }\n'
        f'pcm.coachtest {{ type file; slave.pcm "null"; file "{recording}"; format "raw" }}\n'
    )
    return {"ALSA_CONFIG_PATH": f"{ALSA_BASE}:{config}"}, recording


def ffmpeg_path() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.skip("ffmpeg is not installed")
    return path


def synthetic_available() -> bool:
    try:
        from coachd.capture.open import synthetic_source_class

        synthetic_source_class()
    except Exception:
        return False
    return True


def require_synthetic() -> None:
    if not synthetic_available():
        pytest.skip("the synthetic runner (coachd.capture.synthetic.SyntheticSource) is absent")


class MjpegServer:
    """ffmpeg serving a video as an MJPEG stream on loopback HTTP, as a network camera would.

    `-listen 1` serves one client and exits when it leaves, so while `up` a supervisor
    thread starts ffmpeg again; `kill()` takes the camera away until `start()`.
    """

    def __init__(self, video: Path, port: int, log_path: Path) -> None:
        self.url = f"http://127.0.0.1:{port}/camera.mjpg"
        self._video = video
        self._log_path = log_path
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._lock = threading.Lock()
        self._up = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="mjpeg-server", daemon=True)
        self._thread.start()

    def _command(self) -> list[str]:
        return [
            ffmpeg_path(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            str(self._video),
            "-an",
            "-vf",
            "scale=360:640",  # a kiosk camera's size; keeps the shared CPU for coachd
            "-q:v",
            "6",
            "-f",
            "mpjpeg",
            "-listen",
            "1",
            self.url,
        ]

    def _supervise(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                if self._up.is_set() and (self._proc is None or self._proc.poll() is not None):
                    with self._log_path.open("ab") as log:
                        self._proc = subprocess.Popen(
                            self._command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log
                        )
            self._closed.wait(0.05)

    def start(self) -> None:
        self._up.set()

    def kill(self) -> None:
        """The camera goes away: the server process dies with its connection."""
        with self._lock:
            self._up.clear()
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait(5.0)

    def close(self) -> None:
        self.kill()
        self._closed.set()
        self._thread.join(2.0)


# systemd's WatchdogSec for these runs: the daemon must ping at least this often.
WATCHDOG_S = 2.0
# The daemon counts a thread as wedged after this long without progress (LivePipeline.healthy).
HEARTBEAT_S = 2.0
STARTUP_S = 60.0  # imports and the pose model on a busy shared machine


def unit_seconds(key: str, unit: Path = REPO / "systemd" / "coachd.service") -> float:
    """A `KEY=Ns` time setting of the installed systemd unit."""
    match = re.search(rf"^{key}=(\d+)s?$", unit.read_text(), re.MULTILINE)
    assert match, f"no {key}= in {unit}"
    return float(match.group(1))


# After SIGTERM, systemd waits this long before SIGKILL.
TIMEOUT_STOP_S = unit_seconds("TimeoutStopSec")
# A runner facing image-right, endless: the daemon runs until signalled.
RUNNER = "synthetic:?view=side-right"
QUICK_SESSION = "service.session_start_s=1"
SUMMARY_RE = re.compile(
    r"(\d+) frames tracked, (\d+) dropped \(([\d.]+)%\), "
    r"glass-to-landmarks p50 (\d+) ms p95 (\d+) ms, pose p50 ([\d.]+) ms"
)


def gaps(times: Sequence[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:])]


def summary_figures(output: str) -> dict[str, float]:
    """The figures of the daemon's last summary line (frames, drops, latencies)."""
    found = SUMMARY_RE.findall(output)
    assert found, f"no summary line in the daemon's output:\n{output[-2000:]}"
    tracked, dropped, dropped_pct, p50, p95, pose = found[-1]
    return {
        "tracked": float(tracked),
        "dropped": float(dropped),
        "dropped_pct": float(dropped_pct),
        "latency_p50_ms": float(p50),
        "latency_p95_ms": float(p95),
        "pose_p50_ms": float(pose),
    }


def test_systemd_sees_ready_watchdog_status_and_a_prompt_clean_stop(tmp_path: Path) -> None:
    require_synthetic()
    daemon = start_daemon(tmp_path, RUNNER, [QUICK_SESSION])
    try:
        ready = daemon.wait_ready(STARTUP_S)
        # The pid systemd knows (WATCHDOG_PID) is coachd itself, not a wrapper.
        cmdline = Path(f"/proc/{daemon.pid}/cmdline").read_bytes().split(b"\0")
        coaching = wait_until(
            lambda: any(s.startswith("coaching") for s in daemon.notify.statuses(ready)), 40.0
        )
        # A few more watchdog intervals with a session running.
        wait_until(lambda: len(daemon.notify.times("WATCHDOG")) >= 8, 15.0)
        sent = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        try:
            code: Optional[int] = daemon.proc.wait(10.0)
        except subprocess.TimeoutExpired:
            code = None
        exit_s = time.monotonic() - sent
        time.sleep(0.2)  # the listener thread takes the last datagrams
    finally:
        daemon.cleanup()
    output = daemon.output()
    print(f"READY {ready - daemon.started:.1f} s after spawn; exit {exit_s:.2f} s after SIGTERM")
    print(summary_figures(output))
    assert code == 0, output[-2000:]
    assert cmdline[1:4] == [b"-m", b"coachd", b"run"]
    assert exit_s < 2.0, f"exited {exit_s:.2f} s after SIGTERM"
    assert coaching, f"never coaching; statuses: {daemon.notify.statuses()[-5:]}"
    pings = [t for t in daemon.notify.times("WATCHDOG", "1") if t >= ready]
    assert len(pings) >= 5
    assert max(gaps([ready, *pings])) < WATCHDOG_S, gaps([ready, *pings])
    statuses = daemon.notify.statuses(ready)
    assert any(re.search(r"\d+\.\d fps", s) for s in statuses), statuses[-5:]
    stopping = daemon.notify.times("STOPPING", "1")
    assert len(stopping) == 1 and stopping[0] >= sent
    assert not [t for t in pings if t > stopping[0]], "WATCHDOG=1 after STOPPING=1"
    assert "stopped:" in output


def test_a_wedged_camera_read_stops_the_watchdog_while_the_process_lives(
    tmp_path: Path,
) -> None:
    """A read that blocks with no timeout: an MJPEG stream through a FIFO whose writer is
    SIGSTOPped. systemd must see the pings stop (and would restart the service), see them
    again once the read returns, and be able to stop the service while it is wedged."""
    fifo = tmp_path / "camera.mjpeg"
    os.mkfifo(fifo)
    writer = subprocess.Popen(
        [
            ffmpeg_path(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-f",
            "mjpeg",
            "-q:v",
            "5",
            "-y",
            str(fifo),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    daemon = start_daemon(tmp_path / "daemon", str(fifo))
    try:
        ready = daemon.wait_ready(STARTUP_S)
        pinging = wait_until(lambda: len(daemon.notify.times("WATCHDOG")) >= 3, 15.0)
        flowing = daemon.healthz()
        writer.send_signal(signal.SIGSTOP)
        wedged_at = time.monotonic()
        # The reader first drains what the pipe and FFmpeg's buffers hold, then blocks; once
        # frames stop, /healthz says so and the heartbeat is as stale.
        stalled = wait_until(lambda: daemon.healthz() == 503, 15.0)
        stalled_after = time.monotonic() - wedged_at
        wedge_visible = time.monotonic() + 1.0  # the main loop's next round
        time.sleep(2 * WATCHDOG_S + 0.5)
        alive = daemon.proc.poll() is None
        health_wedged = daemon.healthz()
        writer.send_signal(signal.SIGCONT)
        resumed_at = time.monotonic()
        pings_again = wait_until(
            lambda: any(t > resumed_at for t in daemon.notify.times("WATCHDOG")), 20.0
        )
        # Wedged again, then `systemctl stop`: the stuck read must not hold up the exit.
        writer.send_signal(signal.SIGSTOP)
        stalled_again = wait_until(lambda: daemon.healthz() == 503, 15.0)
        stop_sent = time.monotonic()
        code = daemon.stop(timeout=TIMEOUT_STOP_S + 5.0)
        stop_s = time.monotonic() - stop_sent
    finally:
        writer.send_signal(signal.SIGCONT)
        writer.kill()
        writer.wait(5.0)
        daemon.cleanup()
    output = daemon.output()
    assert pinging and flowing == 200, output[-2000:]
    pings = daemon.notify.times("WATCHDOG", "1")
    print(f"frames stopped {stalled_after:.1f} s after SIGSTOP of the writer")
    assert stalled, "frames kept flowing with the FIFO's writer stopped"
    during = [t for t in pings if wedge_visible < t < resumed_at]
    assert not during, f"{len(during)} WATCHDOG=1 while the camera read was wedged"
    before = [t for t in pings if ready <= t < wedged_at]
    assert len(before) >= 3 and max(gaps(before)) < WATCHDOG_S
    # Alive all along: still sending STATUS, answering /healthz (with 503: no frames).
    assert alive
    assert health_wedged == 503
    statuses = [m.t for m in daemon.notify.messages if "STATUS" in m.fields and wedge_visible < m.t]
    assert len([t for t in statuses if t < resumed_at]) >= 4
    assert pings_again, "the watchdog pings did not come back once the read returned"
    print(f"stopped {stop_s:.2f} s after SIGTERM with the read wedged")
    assert stalled_again
    assert code == 0 and stop_s < TIMEOUT_STOP_S, output[-2000:]


def test_a_lost_network_camera_is_reconnected_counted_and_coached_again(
    tmp_path: Path, real_clip: Path
) -> None:
    server = MjpegServer(real_clip, free_port(), tmp_path / "ffmpeg.log")
    server.start()
    daemon = start_daemon(tmp_path / "daemon", server.url, [QUICK_SESSION])
    try:
        ready = daemon.wait_ready(STARTUP_S)
        first_up = wait_until(lambda: daemon.healthz() == 200, 30.0)
        runner_seen = wait_until(lambda: daemon.metric("coachd_runner_present") == 1, 20.0)
        reconnects_before = daemon.metric("coachd_camera_reconnects_total")
        server.kill()
        lost_at = time.monotonic()
        went_down = wait_until(lambda: daemon.healthz() == 503, 15.0)
        down_s = time.monotonic() - lost_at
        server.start()
        restarted_at = time.monotonic()
        came_back = wait_until(lambda: daemon.healthz() == 200, 40.0)
        back_s = time.monotonic() - restarted_at
        back_wall = time.time()
        # Coaching goes on: the runner is tracked and strides are stored again.
        runner_again = wait_until(lambda: daemon.metric("coachd_runner_present") == 1, 20.0)
        db = daemon.state_dir / DB_NAME
        strides_again = wait_until(lambda: newest_stride_time(db) > back_wall, 30.0, step=0.5)
        metrics = daemon.metrics()
        code = daemon.stop()
    finally:
        server.close()
        daemon.cleanup()
    output = daemon.output()
    print(f"/healthz 503 {down_s:.1f} s after the camera died, 200 {back_s:.1f} s after return")
    assert first_up and runner_seen, output[-2000:]
    assert reconnects_before == 0
    assert went_down, "/healthz stayed 200 with the camera gone"
    assert any("camera lost" in s for s in daemon.notify.statuses(lost_at))
    assert came_back, f"no frames again after the camera came back:\n{output[-2000:]}"
    print(f"coachd_camera_reconnects_total {metrics['coachd_camera_reconnects_total']:g}")
    assert metrics["coachd_camera_reconnects_total"] > 0
    assert runner_again and strides_again, output[-2000:]
    assert daemon.proc.returncode == code == 0
    # The camera loss is not the daemon's fault: systemd's watchdog never starved.
    pings = [t for t in daemon.notify.times("WATCHDOG", "1") if t >= ready]
    assert max(gaps([ready, *pings])) < WATCHDOG_S, gaps([ready, *pings])


def test_a_camera_absent_at_start_is_waited_for(tmp_path: Path, real_clip: Path) -> None:
    """The kiosk boots before its network camera: coachd must come up, say it waits for the
    camera, and start coaching once it appears, not exit and leave it to systemd restarts."""
    server = MjpegServer(real_clip, free_port(), tmp_path / "ffmpeg.log")
    daemon = start_daemon(tmp_path / "daemon", server.url, [QUICK_SESSION])
    try:
        ready = daemon.wait_ready(STARTUP_S)
        waiting = wait_until(lambda: daemon.healthz() == 503, 10.0)
        server.start()
        came = wait_until(lambda: daemon.healthz() == 200, 40.0)
        code = daemon.stop()
    finally:
        server.close()
        daemon.cleanup()
    assert waiting and came, daemon.output()[-2000:]
    assert any("camera" in s for s in daemon.notify.statuses(ready))
    assert code == 0


MIN_STRIDES = 8


def newest_session(db: Path) -> Optional[SessionRecord]:
    """The database's newest session, read-only as `coachd sessions` reads it while the
    daemon writes; None before there is one."""
    if not db.is_file():
        return None
    store = SessionStore(db, readonly=True)
    try:
        rows = store.list_sessions(limit=1)
        return store.load_session(rows[0].id) if rows else None
    finally:
        store.close()


def stored_strides(db: Path) -> int:
    session = newest_session(db)
    return len(session.strides) if session else 0


def newest_stride_time(db: Path) -> float:
    """Wall-clock time of the newest stored stride; 0 when there is none."""
    session = newest_session(db)
    return max((s.t for s in session.strides), default=0.0) if session else 0.0


@dataclass(frozen=True)
class KilledSession:
    db: Path
    killed_at: float  # time.time() of the SIGKILL


@pytest.fixture(scope="module")
def killed_session(tmp_path_factory: pytest.TempPathFactory) -> KilledSession:
    """A daemon SIGKILLed a few seconds into a session with the runner in view."""
    require_synthetic()
    workdir = tmp_path_factory.mktemp("killed")
    daemon = start_daemon(workdir, RUNNER, [QUICK_SESSION])
    try:
        daemon.wait_ready(STARTUP_S)
        db = daemon.state_dir / DB_NAME
        # Read while the daemon writes, as `coachd sessions` on the kiosk would.
        running = wait_until(lambda: stored_strides(db) >= MIN_STRIDES, 60.0, step=0.5)
        assert running, daemon.output()[-2000:]
        # Kill while strides flow (the gait stage may skip some under a heavy load), not
        # at once: wherever the runner is in their step.
        flowing = wait_until(lambda: time.time() - newest_stride_time(db) < 1.0, 20.0, 0.2)
        assert flowing, daemon.output()[-2000:]
        time.sleep(0.5)
        assert daemon.healthz() == 200  # frames flow up to the kill
        killed_at = time.time()
        daemon.proc.kill()
        daemon.proc.wait(10.0)
    finally:
        daemon.cleanup()
    assert daemon.proc.returncode == -signal.SIGKILL
    return KilledSession(db, killed_at)


def test_a_session_killed_mid_run_keeps_its_strides_to_the_last_second(
    killed_session: KilledSession,
) -> None:
    store = SessionStore(killed_session.db, readonly=True)
    try:
        rows = store.list_sessions()
        assert len(rows) == 1
        record = store.load_session(rows[0].id)
    finally:
        store.close()
    assert record.row.ended is None  # nobody closed it: the process died
    assert len(record.strides) >= MIN_STRIDES
    assert [c.kind for c in record.cues][:1] == ["greeting"]
    times = sorted(s.t for s in record.strides)
    # A stride is stored once the next contact closes it: allow ~1 s plus one stride length
    # (two steps at the cadence measured in this very session).
    cadences = [s.metrics["cadence_spm"] for s in record.strides if "cadence_spm" in s.metrics]
    assert cadences, "no stride has a cadence"
    stride_s = 120.0 / float(np.median(cadences))
    lag = killed_session.killed_at - times[-1]
    print(f"newest stride {lag:.2f} s before the SIGKILL (stride {stride_s:.2f} s)")
    assert 0.0 < lag <= 1.0 + stride_s

    listing = subprocess.run(
        coachd_command("sessions", "list", "--db", str(killed_session.db)),
        capture_output=True,
        text=True,
        timeout=60,
        env=child_environment(),
        cwd=REPO,
    )
    assert listing.returncode == 0, listing.stderr
    line = next(x for x in listing.stdout.splitlines() if x.split()[:1] == [str(rows[0].id)])
    assert str(len(record.strides)) in line.split() and "running or crashed" in line


def test_report_turns_the_daemon_made_session_into_a_page_with_plots(
    killed_session: KilledSession, tmp_path: Path
) -> None:
    out = tmp_path / "session.html"
    result = subprocess.run(
        coachd_command("report", "last", "--db", str(killed_session.db), "--html", str(out)),
        capture_output=True,
        text=True,
        timeout=120,
        env=child_environment(),
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    store = SessionStore(killed_session.db, readonly=True)
    try:
        record = store.load_session(store.list_sessions(limit=1)[0].id)
    finally:
        store.close()
    page = out.read_text(encoding="utf-8")
    figures = dict(
        re.findall(
            r'<figure id="([^"]+)"><img alt="[^"]*" src="data:image/png;base64,([^"]+)"', page
        )
    )
    measured = {name for s in record.strides for name in s.metrics}
    assert measured and set(figures) == measured
    for name, data in figures.items():
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n", name
    assert f"<tr><th>Strides</th><td>{len(record.strides)}</td></tr>" in page
    assert "unfinished" in page  # the kill left it open
    greeting = html.escape(record.cues[0].text)
    assert greeting in page
