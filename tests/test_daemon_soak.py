"""The kiosk soak: `coachd run` on the synthetic runner for SOAK_SECONDS (CI: 300; `make soak`:
1800), speaking through a real ALSA device that records to a file, must hold its frame rate,
not leak memory, keep feeding the watchdog and never break a speaking rate limit.

Try it shorter: SOAK_SECONDS=120 .venv/bin/python -m pytest -q -s -m soak tests/test_daemon_soak.py
(COACHD_* variables are reserved for settings, hence the plain name.)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from daemon_harness import (
    STARTUP_S,
    alsa_file_device,
    gaps,
    require_synthetic,
    start_daemon,
    summary_figures,
    unit_seconds,
)

from coachd.service.store import DB_NAME, SessionStore, StoredCue

SOAK_S = float(os.environ.get("SOAK_SECONDS", "300"))
FPS = 30.0
# A runner with faults to correct, so the coach keeps pressing against its rate limits.
FAULTY_RUNNER = f"synthetic:?view=side-right&fps={FPS:g}&overstride=0.3&trunk_lean=18&bounce=0.14"
MIN_GAP_S = 8.0
MAX_PER_MINUTE = 4
SETTINGS = (
    "service.session_start_s=2",
    "engine.warmup_s=10",
    f"engine.min_gap_s={MIN_GAP_S:g}",
    f"engine.max_per_minute={MAX_PER_MINUTE}",
    "engine.fade=false",  # fading would widen the gaps and hide the per-minute cap
    "engine.cooldown_s=10",  # repeats come back soon: more chances to break a limit
)
# The installed unit's watchdog, not the tight one of the short tests.
WATCHDOG_S = unit_seconds("WatchdogSec")
SAMPLE_EVERY_S = 5.0
LEAK_LIMIT_KB = 10 * 1024
ENGINE_KINDS = ("correction", "praise", "program")


def warmup_seconds(total: float) -> float:
    """Long enough for imports, the model, the first session and allocator growth to settle."""
    return min(120.0, max(30.0, 0.1 * total))


def gap_violations(cues: Sequence[StoredCue], min_gap_s: float) -> list[float]:
    """Gaps between consecutive corrections/praise shorter than `min_gap_s`."""
    times = sorted(c.t for c in cues if c.kind in ("correction", "praise"))
    return [g for g in gaps(times) if g < min_gap_s - 1e-3]


def busiest_minute(cues: Sequence[StoredCue]) -> int:
    """The most engine cues in any 60 s window (starting at a cue)."""
    times = sorted(c.t for c in cues if c.kind in ENGINE_KINDS)
    return max((sum(1 for u in times if t <= u < t + 60.0) for t in times), default=0)


@pytest.mark.slow
@pytest.mark.soak
@pytest.mark.timeout(int(SOAK_S + warmup_seconds(SOAK_S) + 300))
def test_a_long_run_holds_frame_rate_memory_watchdog_and_rate_limits(tmp_path: Path) -> None:
    require_synthetic()
    speech_env, recording = alsa_file_device(tmp_path / "audio")
    daemon = start_daemon(
        tmp_path, FAULTY_RUNNER, SETTINGS, int(WATCHDOG_S * 1e6), speech_env=speech_env
    )
    warmup = warmup_seconds(SOAK_S)
    rss: list[tuple[float, int]] = []
    try:
        ready = daemon.wait_ready(STARTUP_S)
        time.sleep(max(0.0, ready + warmup - time.monotonic()))
        start_metrics, start_t = daemon.metrics(), time.monotonic()
        end_at = ready + SOAK_S
        middle_at = (start_t + end_at) / 2
        middle_metrics, middle_t = start_metrics, start_t
        while time.monotonic() < end_at and daemon.proc.poll() is None:
            rss.append((time.monotonic() - ready, daemon.rss_kb()))
            if middle_t < middle_at <= time.monotonic():
                middle_metrics, middle_t = daemon.metrics(), time.monotonic()
            time.sleep(min(SAMPLE_EVERY_S, max(0.0, end_at - time.monotonic())))
        alive_to_the_end = daemon.proc.poll() is None
        rss.append((time.monotonic() - ready, daemon.rss_kb()) if alive_to_the_end else rss[-1])
        end_metrics, end_t = daemon.metrics(), time.monotonic()
        code = daemon.stop()
    finally:
        daemon.cleanup()
    output = daemon.output()
    assert alive_to_the_end and code == 0, output[-3000:]

    elapsed = end_t - start_t
    tracked = (
        end_metrics["coachd_frames_tracked_total"] - start_metrics["coachd_frames_tracked_total"]
    )
    dropped = (
        end_metrics["coachd_frames_dropped_total"] - start_metrics["coachd_frames_dropped_total"]
    )
    fps = tracked / elapsed

    def tracked_rate(a: dict[str, float], b: dict[str, float], seconds: float) -> float:
        key = "coachd_frames_tracked_total"
        return (b[key] - a[key]) / seconds if seconds > 0 else 0.0

    first_half_fps = tracked_rate(start_metrics, middle_metrics, middle_t - start_t)
    second_half_fps = tracked_rate(middle_metrics, end_metrics, end_t - middle_t)
    dropped_share = dropped / (tracked + dropped) if tracked + dropped else 1.0
    growth_kb = rss[-1][1] - rss[0][1]
    pings = [t for t in daemon.notify.times("WATCHDOG", "1") if t >= ready]
    # STATUS goes out every main-loop round (0.25 s): its longest gap is the longest stall.
    statuses = [m.t for m in daemon.notify.messages if "STATUS" in m.fields and m.t >= ready]

    store = SessionStore(daemon.state_dir / DB_NAME, readonly=True)
    try:
        sessions = [store.load_session(row.id) for row in store.list_sessions(limit=1000)]
    finally:
        store.close()
    speech_events = [json.loads(line) for line in daemon.speech_log.read_text().splitlines()]
    emitted = [e for e in speech_events if e["event"] == "emitted" and e["kind"] in ENGINE_KINDS]
    played = [e for e in speech_events if e["event"] == "started"]
    printed = [e for e in speech_events if e["event"] == "printed"]
    stored = [c for s in sessions for c in s.cues if c.kind in ENGINE_KINDS]

    print(
        f"soak {SOAK_S:.0f} s (measured {elapsed:.0f} s after {warmup:.0f} s warm-up): "
        f"{fps:.1f} fps ({first_half_fps:.1f} then {second_half_fps:.1f}), "
        f"{100 * dropped_share:.1f}% dropped; RSS {rss[0][1] / 1024:.1f} -> "
        f"{rss[-1][1] / 1024:.1f} MB ({growth_kb / 1024:+.1f} MB, max "
        f"{max(kb for _, kb in rss) / 1024:.1f} MB); watchdog gap max {max(gaps(pings)):.2f} s, "
        f"main loop stall max {max(gaps(statuses)):.2f} s; "
        f"{len(stored)} engine cues in {len(sessions)} session(s), busiest minute "
        f"{max((busiest_minute(s.cues) for s in sessions), default=0)}; "
        f"{summary_figures(output)}; speech: {len(played)} played, {len(printed)} printed, "
        f"{recording.stat().st_size if recording.exists() else 0} bytes of audio"
    )
    assert growth_kb < LEAK_LIMIT_KB, f"RSS grew {growth_kb / 1024:.1f} MB: {rss}"
    ping_gaps = sorted(gaps(pings))
    assert len(pings) >= SOAK_S / WATCHDOG_S and ping_gaps[-1] < WATCHDOG_S, ping_gaps[-3:]
    # The coach spoke (else the limits below prove nothing) and every cue it decided was
    # handed to speech.
    corrections = [c for c in stored if c.kind == "correction"]
    assert len(corrections) >= 2, [c.cue_id for c in stored]
    assert len(emitted) == len(stored)
    # Spoken through the device all along: none fell back to print for want of it.
    assert played and not printed, printed[:3]
    assert end_metrics['coachd_audio_state{state="ok"}'] == 1
    # The voices it said are cached on disk, within the default 64 MiB.
    assert 0 < end_metrics["coachd_voice_cache_bytes"] <= 64 * 2**20
    for session in sessions:  # each session starts its own coaching, limits included
        assert not gap_violations(session.cues, MIN_GAP_S)
        assert busiest_minute(session.cues) <= MAX_PER_MINUTE
    # The frame rate held: the second half tracked as fast as the first. Compared within the
    # run, not against the camera's 30 fps, which a machine shared with other work can miss;
    # the absolute rate and drops on a quiet machine are docs/benchmarks.md's figures.
    assert second_half_fps >= 0.8 * first_half_fps, (first_half_fps, second_half_fps)
