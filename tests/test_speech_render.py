"""Phrase rendering through the real TTS worker (pyttsx3 + espeak-ng) and its disk cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from coachd.settings import SpeechSettings
from coachd.speech.render import Renderer, cache_key, cache_path, read_wav

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None and shutil.which("espeak") is None,
    reason="espeak-ng is not installed",
)

PHRASES = ["Quick feet.", "Relax your shoulders.", "Run tall."]


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
        clips = {text: first.clip(text) for text in PHRASES}
    finally:
        first.close()
    files = sorted(tmp_path.glob("*.wav"))
    assert len(files) == 3
    stamps = [f.stat().st_mtime_ns for f in files]

    second = render_all(settings, tmp_path, PHRASES)  # a restart with the same settings
    try:
        assert (second.rendered, second.cache_hits) == (0, 3)
        assert not second.tts_running, "the TTS engine was started for nothing"
        for text, clip in clips.items():
            again = second.clip(text)
            assert clip is not None and again is not None
            assert np.array_equal(clip.samples, again.samples)
    finally:
        second.close()
    assert [f.stat().st_mtime_ns for f in sorted(tmp_path.glob("*.wav"))] == stamps


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
