"""The fault soak: `coachd run` coaches a network camera through a real ALSA device while, every
30 s in turn, the sessions database is locked by another process, the audio sink stops taking
data, or the camera server is killed. Coaching must go on throughout: each fault is visible in
/metrics and /healthz while it lasts, every measured stride reaches the database, no pipeline
stage dies, the watchdog is fed, and memory does not grow.

FAULT_SOAK_SECONDS sets its length (CI: 180, each fault twice; `make soak`: 600).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from pathlib import Path
from typing import Callable

import cv2
import pytest
from daemon_harness import (
    STARTUP_S,
    DaemonProcess,
    FifoSink,
    MjpegServer,
    free_port,
    gaps,
    healthz_json,
    require_synthetic,
    start_daemon,
    threads,
    total,
    unit_seconds,
    wait_until,
)

from coachd.capture.open import open_synthetic
from coachd.service.store import DB_NAME, SessionStore

SOAK_S = float(os.environ.get("FAULT_SOAK_SECONDS", "180"))
FAULT_EVERY_S = 30.0
FAULT_S = 12.0
# 12 s at 170 steps a minute is 17 whole strides: the looped clip runs on without a seam.
CLIP_SPEC = "synthetic:?view=side-right&seconds=12&cadence=170&overstride=0.3&trunk_lean=18"
SETTINGS = (
    "service.session_start_s=2",
    "service.session_end_s=30",  # a camera fault is not the runner leaving
    "engine.warmup_s=5",
    "engine.min_gap_s=3",
    "engine.max_per_minute=20",
    "engine.fade=false",
    "engine.cooldown_s=3",  # cues keep coming, so a blocked sink is written to and noticed
    "speech.retry_s=1",
    "speech.write_timeout_s=1.5",
    "camera.reconnect_max_s=5",
)
WATCHDOG_S = unit_seconds("WatchdogSec")
RSS_GROWTH_LIMIT_KB = 5 * 1024


def render_clip(path: Path) -> None:
    """The faulty synthetic runner written as a video file for the camera server to loop."""
    source = open_synthetic(CLIP_SPEC, realtime=False)
    frame = source.read()
    assert frame is not None
    height, width = frame.image.shape[:2]
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter.fourcc(*"mp4v"), source.nominal_fps, (width, height)
    )
    while frame is not None:
        writer.write(frame.image)
        frame = source.read()
    writer.release()
    source.close()


@contextmanager
def database_locked(path: Path) -> Iterator[None]:
    """Another process's exclusive lock on the database, as a backup or an sqlite3 shell."""
    connection = sqlite3.connect(str(path), isolation_level=None, timeout=10.0)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()


@contextmanager
def sink_blocked(sink: FifoSink) -> Iterator[None]:
    sink.stop_reading()
    try:
        yield
    finally:
        sink.resume_reading()


@contextmanager
def camera_down(camera: MjpegServer) -> Iterator[None]:
    camera.kill()
    try:
        yield
    finally:
        camera.start()


def component_state(daemon: DaemonProcess, name: str) -> str:
    status, body = healthz_json(daemon)
    components = body.get("components", {})
    assert isinstance(components, dict)
    return str(components.get(name, {}).get("state", "")) if status else ""


def store_locked(daemon: DaemonProcess) -> bool:
    metrics = daemon.metrics()
    return (
        metrics.get('coachd_store_state{state="locked"}') == 1
        and component_state(daemon, "store") == "locked"
    )


def audio_hung(daemon: DaemonProcess) -> bool:
    metrics = daemon.metrics()
    return (
        metrics.get('coachd_audio_state{state="hung"}') == 1
        and component_state(daemon, "audio") == "hung"
    )


def camera_lost(daemon: DaemonProcess) -> bool:
    metrics = daemon.metrics()
    status, body = healthz_json(daemon)
    return (
        metrics.get("coachd_runner_present") == 0
        and metrics.get("coachd_last_frame_age_seconds", 0) > 2
        and status == 503
        and body.get("status") == "unhealthy"
    )


Visible = Callable[[DaemonProcess], bool]


def sleep_until(t: float) -> None:
    """The fault schedule's next mark (time.monotonic())."""
    time.sleep(max(0.0, t - time.monotonic()))


def all_well(daemon: DaemonProcess) -> bool:
    status, body = healthz_json(daemon)
    return status == 200 and body.get("status") == "ok"


@pytest.mark.slow
@pytest.mark.soak
@pytest.mark.timeout(int(SOAK_S + STARTUP_S + 600))
def test_coaching_goes_on_through_a_fault_every_thirty_seconds(tmp_path: Path) -> None:
    require_synthetic()
    clip = tmp_path / "runner.mp4"
    render_clip(clip)
    camera = MjpegServer(clip, free_port(), tmp_path / "camera.log", size="640:480")
    camera.start()
    sink = FifoSink(tmp_path / "audio")
    daemon = start_daemon(
        tmp_path, camera.url, SETTINGS, int(WATCHDOG_S * 1e6), speech_env=sink.env
    )
    database = tmp_path / "state" / DB_NAME
    faults: list[tuple[str, Callable[[], AbstractContextManager[None]], Visible]] = [
        ("store", lambda: database_locked(database), store_locked),
        ("audio", lambda: sink_blocked(sink), audio_hung),
        ("camera", lambda: camera_down(camera), camera_lost),
    ]
    seen: list[str] = []
    try:
        daemon.wait_ready(STARTUP_S)
        spoken = lambda: total(daemon.metrics(), "coachd_cues_spoken_total")  # noqa: E731
        assert wait_until(lambda: spoken() >= 1 and database.is_file(), 120), daemon.output()[
            -3000:
        ]
        assert wait_until(lambda: all_well(daemon), 30), healthz_json(daemon)
        start = time.monotonic()
        rss_start = threads_start = 0
        rss_kb: list[int] = []  # after each fault, for the report: a leak climbs, a cache steps
        cycle = 0
        while time.monotonic() - start < SOAK_S:
            name, inject, visible = faults[cycle % len(faults)]
            fault_at = start + cycle * FAULT_EVERY_S
            sleep_until(fault_at)
            if cycle == len(faults):  # one of each behind it: allocators and caches settled
                rss_start, threads_start = daemon.rss_kb(), threads(daemon)
            frames_before = total(daemon.metrics(), "coachd_frames_tracked_total")
            with inject():
                shown = wait_until(partial(visible, daemon), FAULT_S)
                assert shown, f"{name} fault not shown: {healthz_json(daemon)}"
                seen.append(name)
                sleep_until(fault_at + FAULT_S)
            assert wait_until(lambda: all_well(daemon), FAULT_EVERY_S - 2), (
                f"not well again after the {name} fault: {healthz_json(daemon)}\n"
                + daemon.output()[-3000:]
            )
            if name != "camera":  # coaching went on during the fault itself
                tracked = total(daemon.metrics(), "coachd_frames_tracked_total")
                assert tracked > frames_before + FAULT_S * 10, (name, frames_before, tracked)
            rss_kb.append(daemon.rss_kb())
            cycle += 1
        metrics = daemon.metrics()
        rss_growth = daemon.rss_kb() - rss_start
        threads_end = threads(daemon)
    finally:
        exit_code = daemon.stop(timeout=unit_seconds("TimeoutStopSec"))
        daemon.cleanup()
        camera.close()
        sink.close()
    output = daemon.output()
    watchdog_max_gap_s = max(gaps(daemon.notify.times("WATCHDOG", "1")), default=0.0)
    report: dict[str, object] = {
        "seconds": SOAK_S,
        "faults": seen,
        "rss_growth_kb": rss_growth,
        "rss_kb_after_each_fault": rss_kb,
        "threads": [threads_start, threads_end],
        "stage_restarts": total(metrics, "coachd_stage_restarts_total"),
        "store_dropped": total(metrics, "coachd_store_dropped_total"),
        "cues_spoken": total(metrics, "coachd_cues_spoken_total"),
        "watchdog_max_gap_s": watchdog_max_gap_s,
    }
    print("\nfault soak:", json.dumps(report))
    assert exit_code == 0, output[-3000:]
    assert {"store", "audio", "camera"} <= set(seen), report
    assert report["stage_restarts"] == 0, output[-3000:]
    assert report["store_dropped"] == 0, report
    assert rss_growth < RSS_GROWTH_LIMIT_KB, report
    assert threads_end <= threads_start + 4, report
    # The watchdog is fed through every fault: coaching never stopped.
    assert watchdog_max_gap_s < WATCHDOG_S, report
    # Every stride each session measured is in the database.
    store = SessionStore(database, readonly=True)
    try:
        sessions = store.list_sessions()
    finally:
        store.close()
    assert sessions, output[-3000:]
    for row in sessions:
        assert row.ended is not None, row
        assert row.strides == row.summary.get("strides"), row
