"""The kiosk daemon harness: `coachd run` as a subprocess, seen as systemd and Prometheus see it.

A real unix datagram NOTIFY_SOCKET and WATCHDOG_USEC, its own state directory and HTTP port;
shared by the daemon, soak and fault-injection tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
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

import pytest

from coachd.service.store import SessionRecord, SessionStore

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
    quiet: bool = True,
    port: Optional[int] = None,
    stdin: Optional[int] = None,
) -> DaemonProcess:
    """`coachd run --source SOURCE` with its own state dir, config and port (a free one
    unless given: a restart on the same port), started as systemd starts a Type=notify
    service with WatchdogSec. Speech is off unless `speech_env` (see alsa_file_device) gives
    it a device; `stdin` (a file descriptor, e.g. a pty's terminal end) replaces /dev/null."""
    workdir.mkdir(parents=True, exist_ok=True)
    state_dir = workdir / "state"
    config = workdir / "empty.toml"  # not /etc/coachd/coachd.toml, whatever this machine has
    config.write_text("")
    port = free_port() if port is None else port
    listener = NotifyListener(workdir / "notify.sock")
    speech_log = workdir / "speech.jsonl"
    command = coachd_command(
        "run",
        "--config",
        str(config),
        "--source",
        source,
        *(["--no-speech"] if speech_env is None else []),
        *(["--quiet"] if quiet else []),
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
            stdin=subprocess.DEVNULL if stdin is None else stdin,
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

    def __init__(self, video: Path, port: int, log_path: Path, size: str = "360:640") -> None:
        """`size` (W:H) is what the camera sends: a kiosk camera's portrait size by default,
        small, to keep the shared CPU for coachd."""
        self.url = f"http://127.0.0.1:{port}/camera.mjpg"
        self._video = video
        self._size = size
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
            f"scale={self._size}",
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
# The retro program with its first drill as the session starts (STOP then finds one on).
RETRO_AT_ONCE = (
    QUICK_SESSION,
    'engine.program="retro"',
    "engine.warmup_s=0",
    "engine.retro_first_s=0",
)
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


class FifoSink:
    """A FIFO an ALSA file PCM writes into and a `cat` child drains into `received`."""

    def __init__(self, workdir: Path) -> None:
        if not ALSA_BASE.is_file():
            pytest.skip("alsa-lib is not installed")
        workdir.mkdir(parents=True, exist_ok=True)
        self.fifo = workdir / "device.fifo"
        os.mkfifo(self.fifo)
        self.received = workdir / "received.raw"
        config = workdir / "asoundrc"
        config.write_text(
            'pcm.!default { type plug; slave.pcm "coachtest" }\n'
            f'pcm.coachtest {{ type file; slave.pcm "null"; file "{self.fifo}"; '
            'format "raw" }\n'
        )
        self.env = {"ALSA_CONFIG_PATH": f"{ALSA_BASE}:{config}"}
        with self.received.open("wb") as out:
            self.reader = subprocess.Popen(["cat", str(self.fifo)], stdout=out)
        # Held open so `cat` never sees end-of-file when the daemon closes its stream.
        self._keep = os.open(self.fifo, os.O_RDWR)
        self._stopped_at = time.monotonic()

    def bytes_received(self) -> int:
        return self.received.stat().st_size

    def stop_reading(self) -> None:
        self.reader.send_signal(signal.SIGSTOP)
        self._stopped_at = time.monotonic()

    def stopped_for(self) -> float:
        return time.monotonic() - self._stopped_at

    def resume_reading(self) -> None:
        self.reader.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.reader.send_signal(signal.SIGCONT)
        self.reader.kill()
        self.reader.wait(10.0)
        os.close(self._keep)


def total(metrics: dict[str, float], name: str, label: str = "") -> float:
    """The sum of every series of `name` (those whose labels hold `label`, when given)."""
    return sum(
        value
        for series, value in metrics.items()
        if series.split("{")[0] == name and label in series
    )


def healthz_json(daemon: DaemonProcess) -> tuple[int, dict[str, object]]:
    status, body = daemon.http("/healthz")
    return status, (json.loads(body) if body else {})


def threads(daemon: DaemonProcess) -> int:
    return len(os.listdir(f"/proc/{daemon.pid}/task"))


def newest_session(db: Path) -> Optional[SessionRecord]:
    """The database's newest session, read-only as `coachd sessions` reads it while the
    daemon writes; None before there is one (or while another process holds it locked)."""
    if not db.is_file():
        return None
    store = SessionStore(db, readonly=True)
    try:
        rows = store.list_sessions(limit=1)
        return store.load_session(rows[0].id) if rows else None
    except sqlite3.Error:
        return None
    finally:
        store.close()


def newest_stride_time(db: Path) -> float:
    """Wall-clock time of the newest stored stride; 0 when there is none."""
    session = newest_session(db)
    return max((s.t for s in session.strides), default=0.0) if session else 0.0
