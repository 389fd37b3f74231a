"""A hung audio output, injected into `coachd run`: seen in /metrics, /healthz and the log,
bounded, and recovered from.

The daemon speaks through an ALSA `file` PCM writing into a FIFO read by `cat`. Stopping the
reader (SIGSTOP) fills the pipe and blocks the device inside PortAudio's write, as a stuck
USB or Bluetooth sink does; SIGCONT lets it take audio again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_harness import (
    STARTUP_S,
    DaemonProcess,
    FifoSink,
    healthz_json,
    require_synthetic,
    start_daemon,
    threads,
    total,
    wait_until,
)

FAULTY_RUNNER = "synthetic:?view=side-right&overstride=0.3&trunk_lean=18"
SETTINGS = (
    "service.session_start_s=1",
    "engine.warmup_s=3",
    "engine.min_gap_s=2",
    "engine.max_per_minute=30",
    "engine.fade=false",
    "engine.cooldown_s=2",  # the same few faults are cued again and again
    "speech.retry_s=1",
    "speech.write_timeout_s=1.5",
)
HUNG_S = 18.0  # how long the reader stays stopped


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[FifoSink]:
    fifo_sink = FifoSink(tmp_path / "audio")
    try:
        yield fifo_sink
    finally:
        fifo_sink.close()


def speech_events(daemon: DaemonProcess) -> list[dict[str, object]]:
    if not daemon.speech_log.exists():
        return []
    return [json.loads(line) for line in daemon.speech_log.read_text().splitlines() if line]


@pytest.mark.slow
@pytest.mark.timeout(int(STARTUP_S + 300))
def test_a_hung_audio_output_is_reported_bounded_and_recovered(
    tmp_path: Path, sink: FifoSink
) -> None:
    require_synthetic()
    daemon = start_daemon(tmp_path, FAULTY_RUNNER, SETTINGS, speech_env=sink.env)
    try:
        daemon.wait_ready(STARTUP_S)
        spoken = lambda: total(daemon.metrics(), "coachd_cues_spoken_total")  # noqa: E731
        state = lambda s: daemon.metric(f'coachd_audio_state{{state="{s}"}}') == 1  # noqa: E731
        assert wait_until(lambda: spoken() >= 1, 120), daemon.output()[-3000:]
        assert state("ok") and sink.bytes_received() > 0

        sink.stop_reading()
        assert wait_until(lambda: state("hung"), 30), daemon.output()[-3000:]
        hung = daemon.metrics()
        threads_when_hung = threads(daemon)
        spoken_when_hung = total(hung, "coachd_cues_spoken_total")
        status, body = healthz_json(daemon)
        assert status == 200 and body["status"] == "degraded", body
        assert "audio" in str(body["reason"]) and "hung" in str(body["reason"]), body

        # The kiosk goes on coaching: frames are tracked, cues are decided and printed.
        frames = total(hung, "coachd_frames_tracked_total")
        assert wait_until(
            lambda: total(daemon.metrics(), "coachd_cues_printed_total", "device-hung") >= 1,
            HUNG_S,
        ), daemon.output()[-3000:]
        assert wait_until(
            lambda: total(daemon.metrics(), "coachd_frames_tracked_total") > frames + 30, 10
        )
        # Stopped for HUNG_S at least, and until a second cue was printed (a loaded machine
        # tracks fewer frames, so cues come slower): still hung after many reopen attempts,
        # nothing counted as spoken meanwhile.
        wait_until(lambda: sink.stopped_for() >= HUNG_S, HUNG_S)
        assert wait_until(
            lambda: total(daemon.metrics(), "coachd_cues_printed_total", "device-hung") >= 2,
            60,
        ), daemon.output()[-3000:]
        still_hung = daemon.metrics()
        assert still_hung['coachd_audio_state{state="hung"}'] == 1
        assert total(still_hung, "coachd_cues_spoken_total") == spoken_when_hung
        # Reopened every second meanwhile, but a bounded number of streams is left blocked.
        assert threads(daemon) <= threads_when_hung + 2
        assert healthz_json(daemon)[0] == 200

        sink.resume_reading()
        assert wait_until(lambda: state("ok"), 30), daemon.output()[-3000:]
        back_at = sink.bytes_received()
        assert wait_until(lambda: spoken() > spoken_when_hung, 60), daemon.output()[-3000:]
        assert healthz_json(daemon)[1]["status"] == "ok"
        # The cue counted as spoken went through the FIFO after the device came back.
        played = [e for e in speech_events(daemon) if e["event"] == "played"]
        last_seconds = float(str(played[-1]["seconds"]))
        assert wait_until(
            lambda: sink.bytes_received() - back_at >= 0.9 * last_seconds * 22050 * 2, 10
        ), (sink.bytes_received(), back_at, last_seconds)
    finally:
        exit_code = daemon.stop()
        daemon.cleanup()
    output = daemon.output()
    assert exit_code == 0, output[-3000:]
    # Logged once when it hung (however many reopen attempts failed), once when it came back.
    assert len(re.findall(r"speech: .*hung", output)) == 1, output[-3000:]
    assert len(re.findall(r"device '.*' is back", output)) == 1, output[-3000:]
    printed = [e for e in speech_events(daemon) if e["event"] == "printed"]
    assert any(e.get("reason") == "device-hung" for e in printed)
