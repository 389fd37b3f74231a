"""`coachd say`: a test phrase through a real ALSA file device, voices, devices, failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import cache_path
from test_speech_device import ALSA_BASE, find_clip, read_raw, write_alsa_config

from coachd.settings import SpeechSettings
from coachd.speech.render import read_wav
from coachd.speech.tones import earcon

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not ALSA_BASE.is_file(), reason="alsa-lib is not installed")


def coachd(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    out_file = tmp_path / "out.raw"
    config = write_alsa_config(tmp_path, out_file)
    env = {
        **os.environ,
        "ALSA_CONFIG_PATH": f"{ALSA_BASE}:{config}",
        "PYTHONPATH": str(REPO),
        "HOME": str(tmp_path),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    env.pop("COACHD_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "coachd", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_say_speaks_a_phrase_with_the_earcon_before_it(tmp_path: Path) -> None:
    text = "Quick feet."
    result = coachd(tmp_path, "say", text, "--kind", "correction", "--rate", "300")
    assert result.returncode == 0, result.stderr
    assert "said 'Quick feet.'" in result.stdout and "rendered now" in result.stdout
    assert result.stderr == ""  # no ALSA/JACK probing noise

    cache = tmp_path / "state" / "coachd" / "voice-cache"
    clip = read_wav(cache_path(cache, SpeechSettings(rate_wpm=300), text)).samples.astype(float)
    tone = earcon(22050, 1.0).astype(float)
    recorded = read_raw(tmp_path / "out.raw")
    at_tone, tone_corr = find_clip(recorded, tone)
    at_clip, clip_corr = find_clip(recorded, clip)
    assert tone_corr > 0.98 and clip_corr > 0.98
    assert at_clip == at_tone + len(tone)  # the earcon, then the words right after it

    again = coachd(tmp_path, "say", text, "--rate", "300")
    assert again.returncode == 0 and "from the cache" in again.stdout


def test_list_voices_marks_the_voice_the_settings_pick(tmp_path: Path) -> None:
    result = coachd(tmp_path, "say", "--list-voices", "--set", "speech.language=en-us")
    assert result.returncode == 0, result.stderr
    marked = [line for line in result.stdout.splitlines() if line.startswith("*")]
    assert len(marked) == 1 and "en-us" in marked[0]
    assert len(result.stdout.splitlines()) > 20


def test_list_devices_shows_the_alsa_device(tmp_path: Path) -> None:
    result = coachd(tmp_path, "say", "--list-devices")
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert any("coachtest" in line for line in lines)
    assert [line.split()[2] for line in lines if line.startswith("*")] == ["default"]


def test_say_without_the_device_prints_and_names_the_problem(tmp_path: Path) -> None:
    result = coachd(tmp_path, "say", "Quick feet.", "--device", "AirPods")
    assert result.returncode == 1
    assert "[coach] Quick feet." in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("coachd: could not speak: no output device matches 'AirPods'")
    assert "coachtest" in last  # and says which devices there are


def test_say_needs_a_phrase(tmp_path: Path) -> None:
    result = coachd(tmp_path, "say")
    assert result.returncode == 2 and "give a phrase" in result.stderr
