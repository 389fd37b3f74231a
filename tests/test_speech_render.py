"""Phrase rendering through the real TTS worker (pyttsx3 + espeak-ng) and its disk cache."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import cache_path, run_coachd

from coachd.errors import EXIT_CONFIG
from coachd.settings import SpeechSettings
from coachd.speech.render import Renderer, cache_key, read_wav

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None and shutil.which("espeak") is None,
    reason="espeak-ng is not installed",
)

PHRASES = ["Quick feet.", "Relax your shoulders.", "Run tall."]


def tts_workers() -> list[int]:
    """This process's TTS worker children, seen in /proc (a renderer starts one on a miss)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue  # not a process, or it ended meanwhile
        parent = re.search(r"^PPid:\s+(\d+)$", status, re.MULTILINE)
        if parent and int(parent[1]) == os.getpid() and b"coachd.speech.tts_worker" in command:
            found.append(int(entry.name))
    return found


def render_all(settings: SpeechSettings, cache_dir: Path, phrases: list[str]) -> Renderer:
    renderer = Renderer(settings, cache_dir)
    renderer.request(phrases)
    assert renderer.wait_idle(60), "rendering did not finish"
    return renderer


def test_a_second_run_renders_nothing(tmp_path: Path) -> None:
    settings = SpeechSettings(rate_wpm=250)
    first = render_all(settings, tmp_path, PHRASES)
    try:
        assert (first.rendered, first.cache_hits, first.failures) == (3, 0, 0)
        assert tts_workers(), "the first run rendered without the TTS engine"
        clips = {text: first.clip(text) for text in PHRASES}
    finally:
        first.close()
    files = sorted(tmp_path.glob("*.wav"))
    assert len(files) == 3
    contents = [f.read_bytes() for f in files]
    a_day_ago = files[0].stat().st_mtime - 86400
    for f in files:
        os.utime(f, (a_day_ago, a_day_ago))

    second = render_all(settings, tmp_path, PHRASES)  # a restart with the same settings
    try:
        assert (second.rendered, second.cache_hits) == (0, 3)
        assert not tts_workers(), "the TTS engine was started for nothing"
        for text, clip in clips.items():
            again = second.clip(text)
            assert clip is not None and again is not None
            assert np.array_equal(clip.samples, again.samples)
    finally:
        second.close()
    assert [f.read_bytes() for f in files] == contents  # not written again
    # A hit counts as a use: the mtime, the cache's record of it, is refreshed.
    assert all(f.stat().st_mtime > a_day_ago + 3600 for f in files)


def test_the_cache_key_follows_text_voice_rate_and_volume() -> None:
    base = dict(text="Quick feet.", voice="", language="en", rate_wpm=170, volume=1.0)
    key = cache_key(**base)  # type: ignore[arg-type]
    assert key == cache_key(**base)  # type: ignore[arg-type]
    for change in (
        {"text": "Quick feet!"},
        {"voice": "gmw/en-us"},
        {"language": "de"},
        {"rate_wpm": 171},
        {"volume": 0.5},
    ):
        assert cache_key(**(base | change)) != key, change  # type: ignore[arg-type]


def test_settings_change_the_rendered_audio_not_just_the_name(tmp_path: Path) -> None:
    text = "Relax your shoulders."
    slow, fast = SpeechSettings(rate_wpm=120), SpeechSettings(rate_wpm=300)
    quiet = SpeechSettings(rate_wpm=120, volume=0.3)
    renderer = Renderer(slow, tmp_path)
    renderer.request([text])
    assert renderer.wait_idle(60)
    renderer.close()
    for settings in (fast, quiet):
        other = Renderer(settings, tmp_path)
        other.request([text])
        assert other.wait_idle(60)
        assert other.rendered == 1 and other.cache_hits == 0  # a new key: rendered again
        other.close()
    slow_clip = read_wav(cache_path(tmp_path, slow, text))
    fast_clip = read_wav(cache_path(tmp_path, fast, text))
    quiet_clip = read_wav(cache_path(tmp_path, quiet, text))
    assert fast_clip.seconds < 0.75 * slow_clip.seconds
    loud_rms = np.sqrt(np.mean(slow_clip.samples.astype(float) ** 2))
    quiet_rms = np.sqrt(np.mean(quiet_clip.samples.astype(float) ** 2))
    assert quiet_rms < 0.6 * loud_rms


def test_a_damaged_cache_file_is_rendered_again(tmp_path: Path) -> None:
    settings = SpeechSettings()
    path = cache_path(tmp_path, settings, "Quick feet.")
    path.write_bytes(b"RIFF not really")
    renderer = render_all(settings, tmp_path, ["Quick feet."])
    try:
        assert renderer.rendered == 1 and renderer.clip("Quick feet.") is not None
    finally:
        renderer.close()


def test_a_voice_that_does_not_exist_fails_with_a_clear_reason(tmp_path: Path) -> None:
    renderer = render_all(SpeechSettings(voice="no-such-voice"), tmp_path, ["Quick feet."])
    try:
        assert renderer.state("Quick feet.") == "failed" and renderer.failures == 1
        assert "no-such-voice" in renderer.last_error and "--list-voices" in renderer.last_error
    finally:
        renderer.close()


# -- the size limit ----------------------------------------------------------------------

MIB = 1 << 20
SMALL = SpeechSettings(rate_wpm=400, cache_max_mb=1)  # a numbered phrase: ~70 KB


def numbered(count: int, start: int = 0) -> list[str]:
    return [f"Cadence {150 + i}, aim for {170 + i}." for i in range(start, start + count)]


def cache_files(cache_dir: Path) -> dict[str, int]:
    """Name and size of each phrase file (named by its 32-hex-digit key)."""
    return {
        p.name: p.stat().st_size
        for p in cache_dir.glob("*.wav")
        if re.fullmatch(r"[0-9a-f]{32}\.wav", p.name)
    }


def plant_foreign_files(cache_dir: Path) -> dict[Path, bytes]:
    """Files the cache must leave alone, all older than any phrase."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / "keep").mkdir()
    foreign = {
        cache_dir / "notes.txt": b"the admin's notes",
        cache_dir / "greeting.wav": b"RIFF not a cache key",
        cache_dir / f"{'A' * 32}.wav": b"upper case: not a key cache_key makes",
        cache_dir / f".{'0' * 32}.wav.{os.getpid()}.part": b"a live worker's partial file",
        cache_dir / "keep" / f"{'1' * 32}.wav": b"in a subdirectory",
    }
    for path, data in foreign.items():
        path.write_bytes(data)
        os.utime(path, (1_000_000, 1_000_000))
    return foreign


def test_the_cache_stays_under_its_limit_and_keeps_what_is_used(tmp_path: Path) -> None:
    foreign = plant_foreign_files(tmp_path)
    popular, oldest = "Run tall.", "Quick feet."
    renderer = render_all(SMALL, tmp_path, [oldest, popular])
    try:
        fillers = numbered(40)
        for batch in range(0, len(fillers), 5):
            # Played between batches: the popular phrase, then another (now the playing one).
            assert renderer.clip(popular) is not None
            assert renderer.clip(fillers[batch - 1] if batch else oldest) is not None
            renderer.request(fillers[batch : batch + 5])
            assert renderer.wait_idle(60)
        on_disk = cache_files(tmp_path)
        assert renderer.rendered == 42 and renderer.evicted > 0
        assert sum(on_disk.values()) <= 1 * MIB
        assert sum(on_disk.values()) == renderer.cache_bytes
        assert cache_path(tmp_path, SMALL, popular).name in on_disk
        assert cache_path(tmp_path, SMALL, oldest).name not in on_disk
        assert cache_path(tmp_path, SMALL, fillers[0]).name not in on_disk
        assert cache_path(tmp_path, SMALL, fillers[-1]).name in on_disk
        # Memory follows the disk: an evicted phrase is no longer ready, a kept one is.
        ready = [t for t in [oldest, popular, *fillers] if renderer.state(t) == "ready"]
        assert sorted(cache_path(tmp_path, SMALL, t).name for t in ready) == sorted(on_disk)
    finally:
        renderer.close()
    assert {path: path.read_bytes() for path in foreign} == foreign


def test_a_restart_trims_an_overfull_cache_oldest_use_first(tmp_path: Path) -> None:
    phrases = numbered(30)
    first = render_all(SpeechSettings(rate_wpm=400, cache_max_mb=64), tmp_path, phrases)
    first.close()
    paths = [cache_path(tmp_path, SMALL, text) for text in phrases]
    assert sum(p.stat().st_size for p in paths) > 1.5 * MIB  # over the coming limit
    for age, path in enumerate(reversed(paths)):  # phrases[0] used longest ago...
        os.utime(path, (1_700_000_000 - age, 1_700_000_000 - age))
    os.utime(paths[0], (1_700_000_100, 1_700_000_100))  # ...until just now
    foreign = plant_foreign_files(tmp_path)

    second = Renderer(SMALL, tmp_path)
    try:
        assert second.wait_idle(30)
        assert not tts_workers()  # trimming renders nothing
        assert second.evicted > 0
    finally:
        second.close()
    kept = [p.exists() for p in paths]
    assert sum(cache_files(tmp_path).values()) <= 1 * MIB
    assert kept[0] and kept[-1] and not kept[1]
    # What is left is the most recently used: once one is gone, every older one is too.
    assert kept[1:] == sorted(kept[1:])
    assert {path: path.read_bytes() for path in foreign} == foreign


def test_a_killed_workers_partial_file_is_removed_at_start(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    tmp_path.mkdir(exist_ok=True)
    left = tmp_path / f".{'e' * 32}.wav.{gone.pid}.part"
    live = tmp_path / f".{'f' * 32}.wav.{os.getpid()}.part"
    for path in (left, live):
        path.write_bytes(b"RIFF half a phrase")
    renderer = Renderer(SMALL, tmp_path)
    try:
        assert renderer.wait_idle(30)
    finally:
        renderer.close()
    assert not left.exists() and live.exists()


def test_the_playing_and_the_waiting_phrase_are_never_evicted(tmp_path: Path) -> None:
    playing, waiting = "Relax your shoulders.", "Run tall."
    renderer = render_all(SMALL, tmp_path, [playing])
    try:
        assert renderer.clip(playing) is not None  # handed to the player
        renderer.request([waiting], urgent=True)  # a cue waits for it
        assert renderer.wait_idle(60)
        renderer.request(numbered(40))  # then a flood of new phrases
        assert renderer.wait_idle(60)
        assert renderer.evicted > 0
        for text in (playing, waiting):
            assert cache_path(tmp_path, SMALL, text).is_file(), text
            assert renderer.state(text) == "ready", text
        assert sum(cache_files(tmp_path).values()) <= 1 * MIB
    finally:
        renderer.close()


def test_a_vanished_cache_file_is_rendered_again(tmp_path: Path) -> None:
    text = "Quick feet."
    renderer = render_all(SMALL, tmp_path, [text])
    try:
        cache_path(tmp_path, SMALL, text).unlink()  # e.g. another coachd trimmed it
        assert renderer.clip(text) is not None  # still in memory for this playing
        renderer.request(["Run tall."])  # anything: the renderer notices on its next step
        assert renderer.wait_idle(60)
        assert renderer.state(text) == "unknown"
        renderer.request([text], urgent=True)
        assert renderer.wait_idle(60)
        assert renderer.state(text) == "ready" and renderer.rendered == 3
        assert cache_path(tmp_path, SMALL, text).is_file()
    finally:
        renderer.close()


@pytest.mark.parametrize(
    "args, env",
    [
        (["--set", "speech.cache_max_mb=0"], {}),
        ([], {"COACHD_SPEECH__CACHE_MAX_MB": "-5"}),
        ([], {"COACHD_SPEECH__CACHE_MAX_MB": "lots"}),
    ],
    ids=["zero", "negative", "not a number"],
)
def test_a_bad_cache_limit_is_a_one_line_config_error(args: list[str], env: dict[str, str]) -> None:
    done = run_coachd("config", "show", *args, env=env)
    assert done.returncode == EXIT_CONFIG
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert re.search(r"speech\.cache_max_mb = .*allowed: a number from 1\.0 to 65536\.0", lines[0])
