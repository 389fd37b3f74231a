"""Speech through a real PortAudio device: an ALSA `file` PCM whose output lands in a file.

libasound reads its configuration once per process, so every test runs its speaker in a
subprocess with ALSA_CONFIG_PATH pointing at a configuration written for that test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import cache_path

from coachd.settings import SpeechSettings
from coachd.speech.render import read_wav
from coachd.speech.tones import click

REPO = Path(__file__).resolve().parent.parent
ALSA_BASE = Path("/usr/share/alsa/alsa.conf")

pytestmark = pytest.mark.skipif(not ALSA_BASE.is_file(), reason="alsa-lib is not installed")

PRELUDE = textwrap.dedent(
    """
    import json, shutil, sys, time
    from pathlib import Path
    from coachd.messages import Cue
    from coachd.settings import SpeechSettings
    from coachd.speech import Speaker

    ARGS = json.loads(sys.argv[1])
    SETTINGS = SpeechSettings(**ARGS["settings"])
    CACHE = Path(ARGS["cache"])
    PRINTED = []

    def cue(text, kind="program", n=0):
        return Cue(t_emit=time.monotonic(), cue_id=f"c{n}", text=text, kind=kind)

    def wait_for(predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def report(speaker, **extra):
        s = speaker.stats
        out = dict(played=s.played, dropped_stale=s.dropped_stale, failures=s.failures,
                   printed=s.printed, rendered=s.rendered, cache_hits=s.cache_hits,
                   device_state=s.device_state, latencies_ms=list(s.latencies_ms),
                   printed_lines=PRINTED, **extra)
        print("RESULT " + json.dumps(out), flush=True)
    """
)


def write_alsa_config(tmp_path: Path, out_file: Path) -> Path:
    """A default PCM that converts (plug) into a file PCM: PortAudio sees a real device."""
    config = tmp_path / "asoundrc"
    config.write_text(
        'pcm.!default { type plug; slave.pcm "coachtest" }\n'
        f'pcm.coachtest {{ type file; slave.pcm "null"; file "{out_file}"; format "raw" }}\n'
    )
    return config


def run_child(
    tmp_path: Path, out_file: Path, body: str, settings: dict[str, Any], timeout: float = 60.0
) -> dict[str, Any]:
    config = write_alsa_config(tmp_path, out_file)
    env = {
        **os.environ,
        "ALSA_CONFIG_PATH": f"{ALSA_BASE}:{config}",
        "PYTHONPATH": str(REPO),
    }
    args = {"settings": settings, "cache": str(tmp_path / "cache"), "tmp": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(body), json.dumps(args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    results = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and results, f"child failed:\n{proc.stdout}\n{proc.stderr}"
    result: dict[str, Any] = json.loads(results[-1][len("RESULT ") :])
    result["stderr"] = proc.stderr
    return result


def clip_samples(tmp_path: Path, settings: dict[str, Any], text: str) -> np.ndarray:
    path = cache_path(tmp_path / "cache", SpeechSettings(**settings), text)
    return read_wav(path).samples.astype(np.float64)


def find_clip(
    recorded: np.ndarray, clip: np.ndarray, start: int = 0, search: int = 22050
) -> tuple[int, float]:
    """Where `clip` best matches `recorded` within `search` samples after `start`, and the
    correlation there (-1, 0.0 when too little was recorded)."""
    window = recorded[start : start + search + len(clip)]
    if len(window) < len(clip):
        return -1, 0.0
    # Candidates by FFT cross-correlation, then the correlation coefficient at each.
    n = 2 * len(window)
    scores = np.fft.irfft(np.fft.rfft(window, n) * np.conj(np.fft.rfft(clip, n)), n)
    scores = scores[: len(window) - len(clip) + 1]
    found = []
    for candidate in np.argsort(scores)[::-1][:5]:
        segment = window[int(candidate) : int(candidate) + len(clip)]
        found.append((float(np.corrcoef(segment, clip)[0, 1]), int(candidate)))
    best = max(corr for corr, _ in found)
    # Two copies of a cue in the window match equally well: the earlier one is next.
    offset = min(at for corr, at in found if corr >= best - 1e-4)
    return start + offset, best


def read_raw(path: Path) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), dtype=np.int16).astype(np.float64)


BASE = {"earcon": False, "praise_chime": False, "retry_s": 0.3, "rate_wpm": 320}


def test_cues_play_through_a_real_device_within_the_latency_budget(tmp_path: Path) -> None:
    out_file = tmp_path / "out.raw"
    phrase = "Quick feet."
    body = """
        speaker = Speaker(SETTINGS, CACHE, Path(ARGS["tmp"]) / "speech.jsonl",
                          printer=PRINTED.append)
        speaker.start([ARGS["phrase"]])
        assert speaker.wait_ready(30)
        assert wait_for(lambda: speaker.stats.device_state == "ok")
        for n in range(ARGS["count"]):
            speaker.say(cue(ARGS["phrase"], n=n))
            assert speaker.wait_quiet(10)
            time.sleep(0.05)
        speaker.close()
        report(speaker)
    """
    settings = dict(BASE)
    result = run_child(tmp_path, out_file, _with(body, phrase=phrase, count=8), settings)
    assert result["played"] == 8 and result["printed"] == 0 and result["failures"] == 0
    assert "ALSA lib" not in result["stderr"] and "jack" not in result["stderr"].lower()

    clip = clip_samples(tmp_path, settings, phrase)
    recorded = read_raw(out_file)
    assert np.abs(recorded).max() > 1000, "the device received silence"
    # Eight clips and the device check's 0.2 s of silence: nothing more, nothing less.
    assert abs(len(recorded) - 8 * len(clip) - 0.2 * 22050) < 0.05 * len(clip)
    offset = 0
    for _ in range(8):
        offset, corr = find_clip(recorded, clip, offset)
        assert corr > 0.98, f"recorded audio is not the phrase (correlation {corr:.3f})"
        offset += len(clip)

    latencies = np.array(result["latencies_ms"])
    p95 = float(np.percentile(latencies, 95))
    print(f"emit-to-device latency: p50 {np.median(latencies):.1f} ms, p95 {p95:.1f} ms")
    clip_ms = 1000.0 * len(clip) / 22050
    assert p95 < 0.25 * clip_ms, "a cue should start long before a phrase's length has passed"

    events = [json.loads(line) for line in (tmp_path / "speech.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("emitted") == 8 and kinds.count("played") == 8
    assert all(e["latency_ms"] >= 0 for e in events if e["event"] == "started")


def _with(body: str, **values: Any) -> str:
    for name, value in values.items():
        body = body.replace(f'ARGS["{name}"]', repr(value))
    return body


def test_a_lost_device_prints_cues_and_is_reopened_when_it_returns(tmp_path: Path) -> None:
    device_dir = tmp_path / "device"  # the file PCM writes here: removing it breaks the device
    device_dir.mkdir()
    out_file = device_dir / "out.raw"
    body = """
        speaker = Speaker(SETTINGS, CACHE, None, printer=PRINTED.append)
        speaker.start(["Quick feet.", "Relax your shoulders."])
        assert speaker.wait_ready(30)
        assert wait_for(lambda: speaker.stats.device_state == "ok")
        speaker.say(cue("Quick feet.", n=0))
        assert speaker.wait_quiet(10)
        states = [speaker.stats.device_state]
        time.sleep(SETTINGS.idle_close_s + 0.3)  # idle: the stream is released
        shutil.rmtree(ARGS["device_dir"])  # the headphones are switched off
        speaker.say(cue("Quick feet.", n=1))
        assert speaker.wait_quiet(10)
        states.append(speaker.stats.device_state)
        time.sleep(1.0)  # several reopen attempts fail meanwhile
        states.append(speaker.stats.device_state)
        Path(ARGS["device_dir"]).mkdir()  # ... and on again
        recovered = wait_for(lambda: speaker.stats.device_state == "ok", 10)
        speaker.say(cue("Relax your shoulders.", n=2))
        assert speaker.wait_quiet(10)
        speaker.close()
        report(speaker, states=states, recovered=recovered)
    """
    settings = BASE | {"idle_close_s": 0.2}
    result = run_child(tmp_path, out_file, _with(body, device_dir=str(device_dir)), settings)
    assert result["states"] == ["ok", "retrying", "retrying"]
    assert result["printed_lines"] == ["Quick feet."]
    assert result["recovered"] and result["played"] == 2 and result["failures"] >= 1
    # One log line for the loss, however many reopen attempts failed; one for the return.
    assert result["stderr"].count("cues are printed") == 1, result["stderr"]
    assert result["stderr"].count("is back") == 1, result["stderr"]

    recorded = read_raw(out_file)  # the re-created device holds only the cue after recovery
    clip = clip_samples(tmp_path, settings, "Relax your shoulders.")
    assert abs(len(recorded) - len(clip) - 0.2 * 22050) < 0.05 * len(clip)
    assert find_clip(recorded, clip)[1] > 0.98


def test_a_newer_waiting_cue_replaces_an_older_one(tmp_path: Path) -> None:
    out_file = tmp_path / "out.raw"
    first = "Keep your chest tall and let your arms swing."
    stale, newest, last = "Quick feet.", "Relax your shoulders.", "Well done, 12 minutes."
    body = """
        log_path = Path(ARGS["tmp"]) / "speech.jsonl"
        speaker = Speaker(SETTINGS, CACHE, log_path, printer=PRINTED.append)
        speaker.start([ARGS["first"], ARGS["stale"], ARGS["newest"]])
        assert speaker.wait_ready(30)
        assert wait_for(lambda: speaker.stats.device_state == "ok")
        speaker.say(cue(ARGS["first"], n=0))
        assert wait_for(lambda: speaker.stats.latencies_ms)  # the first cue is playing
        speaker.say(cue(ARGS["stale"], n=1))
        speaker.say(cue(ARGS["newest"], n=2))
        assert wait_for(lambda: len(speaker.stats.latencies_ms) == 2)
        speaker.say(cue(ARGS["last"], kind="summary", n=3))  # said just before stopping
        speaker.close(finish_current=True, timeout=10)  # finishes c2, then says c3
        speaker.say(cue(ARGS["stale"], n=4))  # too late: ignored, and no exception
        report(speaker)
    """
    settings = BASE
    result = run_child(
        tmp_path,
        out_file,
        _with(body, first=first, stale=stale, newest=newest, last=last),
        settings,
    )
    assert result["played"] == 3 and result["dropped_stale"] == 1 and result["printed"] == 0

    events = [json.loads(line) for line in (tmp_path / "speech.jsonl").read_text().splitlines()]
    dropped = [e for e in events if e["event"] == "dropped"]
    assert [(e["cue_id"], e["reason"]) for e in dropped] == [("c1", "replaced")]
    assert "c4" not in {e["cue_id"] for e in events}  # after close(): ignored
    played = [e["cue_id"] for e in events if e["event"] == "played"]
    assert played == ["c0", "c2", "c3"]
    started = {e["cue_id"]: e["t"] for e in events if e["event"] == "started"}
    first_clip = clip_samples(tmp_path, settings, first)
    newest_clip = clip_samples(tmp_path, settings, newest)
    first_s = len(first_clip) / 22050
    # One cue at a time: the newest starts only once the first has had time to be heard.
    assert started["c2"] - started["c0"] >= 0.95 * first_s

    last_clip = clip_samples(tmp_path, settings, last)  # rendered on demand (a number)
    recorded = read_raw(out_file)
    expected = len(first_clip) + len(newest_clip) + len(last_clip) + 0.2 * 22050
    assert abs(len(recorded) - expected) < 0.05 * len(newest_clip)
    at, corr = find_clip(recorded, first_clip)
    assert corr > 0.98
    # ... then the newest in full (close() let it finish), then the cue said before close().
    at, corr = find_clip(recorded, newest_clip, at + len(first_clip), search=2048)
    assert corr > 0.98
    assert find_clip(recorded, last_clip, at + len(newest_clip), search=2048)[1] > 0.98


def test_slow_or_failing_tts_never_delays_the_frame_loop(tmp_path: Path) -> None:
    body = """
        import numpy as np

        PERIOD = 1 / 30

        def frame_loop(speaker, text_for, frames=60):
            # A stand-in for frame processing: some work, then say(), paced at 30 Hz.
            work = np.random.default_rng(0).random(20_000)
            say_s, late = [], 0
            start = time.monotonic()
            deadline = start
            for i in range(frames):
                np.sort(work)
                if speaker is not None:
                    t0 = time.perf_counter()
                    speaker.say(cue(text_for(i), kind="correction", n=i))
                    say_s.append(time.perf_counter() - t0)
                deadline += PERIOD
                pause = deadline - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                else:
                    late += 1
            return dict(total=time.monotonic() - start, say_s=say_s, late=late)

        baseline = frame_loop(None, None)
        # Slow: every frame asks for a new, long phrase with a number (rendered on demand).
        words = " ".join(["keep your cadence quick and your steps light"] * 12)
        slow = Speaker(SETTINGS, CACHE, None, printer=PRINTED.append)
        with_slow = frame_loop(slow, lambda i: f"Cadence {150 + i}. {words}")
        slow_stats = slow.stats
        slow.close(finish_current=False, timeout=1.0)
        baseline2 = frame_loop(None, None)  # the machine's load drifts: measure it again
        # Failing: the voice does not exist, every render fails.
        broken = Speaker(SpeechSettings(**{**ARGS["settings"], "voice": "no-such-voice"}),
                         CACHE, None, printer=PRINTED.append)
        with_failing = frame_loop(broken, lambda i: f"Step {i}")
        broken_stats = broken.stats
        broken.close(finish_current=False, timeout=1.0)
        report(broken, baseline=baseline, baseline2=baseline2, slow=with_slow,
               failing=with_failing,
               slow_rendered=slow_stats.rendered, slow_dropped=slow_stats.dropped_stale,
               broken_failures=broken_stats.failures, broken_printed=broken_stats.printed)
    """
    result = run_child(tmp_path, tmp_path / "out.raw", body, BASE)
    period = 1 / 30
    for name, base in (("slow", result["baseline"]), ("failing", result["baseline2"])):
        run = result[name]
        ratio = run["total"] / base["total"]
        say_median = float(np.median(run["say_s"]))
        print(
            f"{name} TTS: frame loop {ratio:.3f}x the loop without speech; say() median "
            f"{say_median * 1e3:.3f} ms, p95 {np.percentile(run['say_s'], 95) * 1e3:.3f} ms, "
            f"max {max(run['say_s']) * 1e3:.1f} ms; late frames {run['late']} "
            f"(without speech {base['late']})"
        )
        assert ratio < 1.25, f"{name} TTS slowed the frame loop {ratio:.2f}x"
        # A say() that waited for a render would take a render's time (far over a frame);
        # the margin is for a shared, busy machine.
        assert say_median < 0.2 * period, f"say() took {say_median * 1e3:.1f} ms ({name})"
    # The TTS really was slow (cues replaced while rendering) and really failed (printed).
    assert result["slow_dropped"] > 30, result
    assert result["broken_failures"] > 0 and result["broken_printed"] > 0, result


def test_the_metronome_clicks_at_the_cadence_between_cues(tmp_path: Path) -> None:
    out_file = tmp_path / "out.raw"
    body = """
        speaker = Speaker(SETTINGS, CACHE, None, printer=PRINTED.append)
        assert wait_for(lambda: speaker.stats.device_state == "ok")
        speaker.set_metronome(300.0)  # a click every 0.2 s
        time.sleep(1.5)
        speaker.set_metronome(None)
        time.sleep(0.3)
        speaker.close()
        report(speaker)
    """
    run_child(tmp_path, out_file, body, BASE)
    # A file device records only what was written, so the clicks lie back to back after
    # the device check's silence.
    recorded = read_raw(out_file)[int(0.2 * 22050) :]
    tick = click(22050, 1.0).astype(float)
    count = len(recorded) // len(tick)
    assert len(recorded) == count * len(tick)
    assert 6 <= count <= 9, f"{count} clicks in 1.5 s at 300 per minute"
    for n in range(count):
        segment = recorded[n * len(tick) : (n + 1) * len(tick)]
        assert np.corrcoef(segment, tick)[0, 1] > 0.99
