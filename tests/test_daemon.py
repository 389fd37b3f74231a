"""`coachd run` as a kiosk service, seen as systemd and Prometheus see it.

Each test runs the daemon as a subprocess with a real unix datagram NOTIFY_SOCKET and
WATCHDOG_USEC, its own state directory and HTTP port, and talks to it only through those:
READY/WATCHDOG/STATUS/STOPPING, /healthz, /metrics, signals, the sessions database and the
`coachd sessions`/`coachd report` commands. The harness is tests/daemon_harness.py.
"""

from __future__ import annotations

import html
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
from daemon_harness import (
    QUICK_SESSION,
    REPO,
    RUNNER,
    STARTUP_S,
    TIMEOUT_STOP_S,
    WATCHDOG_S,
    MjpegServer,
    child_environment,
    coachd_command,
    ffmpeg_path,
    free_port,
    gaps,
    newest_session,
    newest_stride_time,
    require_synthetic,
    start_daemon,
    summary_figures,
    wait_until,
)

from coachd.catalog import visible
from coachd.service.store import DB_NAME, SessionStore


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


def stored_strides(db: Path) -> int:
    session = newest_session(db)
    return len(session.strides) if session else 0


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
    figures = set(re.findall(r'<figure id="([^"]+)">', page))
    measured = {name for s in record.strides for name in s.metrics if visible(name, s.view)}  # type: ignore[arg-type]
    assert measured and figures == measured
    assert "<svg" in page and "<img" not in page
    assert "unfinished" in page  # the kill left it open
    greeting = html.escape(record.cues[0].text)
    assert greeting in page
