"""Speech pieces that need no audio device: texts, tones, device choice, the printed fallback."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from coachd.messages import Cue
from coachd.settings import SpeechSettings
from coachd.speech import Speaker, spoken_text
from coachd.speech.player import OutputDevice, convert, find_device
from coachd.speech.tones import click, earcon, praise_chime


def test_numbers_are_left_out_when_speak_numbers_is_off() -> None:
    text = "Cadence 158, aim for 170. Quicker, lighter steps."
    assert spoken_text(text, speak_numbers=True) == text
    assert spoken_text(text, speak_numbers=False) == "Quicker, lighter steps."
    assert spoken_text("Your cadence is 168.", speak_numbers=False) == ""
    assert spoken_text("Run tall.", speak_numbers=False) == "Run tall."


def test_tones_are_short_audible_and_follow_the_volume() -> None:
    for make, longest_s in ((earcon, 0.4), (praise_chime, 0.6), (click, 0.05)):
        loud, soft = make(22050, 1.0), make(22050, 0.25)
        assert loud.dtype == np.int16 and 0 < len(loud) <= longest_s * 22050
        assert np.abs(loud).max() > 3000
        ratio = np.abs(soft.astype(float)).max() / np.abs(loud.astype(float)).max()
        assert abs(ratio - 0.25) < 0.02
        # No click at the edges: the envelope starts and ends near zero.
        assert abs(int(loud[0])) < 500 and abs(int(loud[-1])) < 500
    # The chime rises: the strongest frequency of its opening is below that of what follows.
    chime = praise_chime(22050).astype(float)
    opening, rest = chime[: int(0.12 * 22050)], chime[int(0.16 * 22050) : int(0.3 * 22050)]
    peaks = [np.argmax(np.abs(np.fft.rfft(part))) * 22050 / len(part) for part in (opening, rest)]
    assert peaks[0] < peaks[1]


DEVICES = [
    OutputDevice(0, "HDA Intel PCH: ALC257 Analog (hw:0,0)", "ALSA", 2, 48000),
    OutputDevice(3, "WH-1000XM4", "ALSA", 2, 48000),
    OutputDevice(5, "pulse", "ALSA", 32, 44100),
    OutputDevice(6, "default", "ALSA", 32, 44100, is_default=True),
]


def test_the_device_setting_picks_by_default_index_or_name_part() -> None:
    assert find_device(DEVICES, "") == DEVICES[3]
    assert find_device(DEVICES, "3") == DEVICES[1]
    assert find_device(DEVICES, "wh-1000") == DEVICES[1]
    assert find_device(DEVICES, "Pulse") == DEVICES[2]
    assert find_device(DEVICES, "hw:0,0") == DEVICES[0]
    assert find_device(DEVICES, "AirPods") is None
    assert find_device(DEVICES, "9") is None
    assert find_device([], "") is None


def test_audio_is_converted_to_the_device_rate_and_channels() -> None:
    tone = (np.sin(2 * np.pi * 440 * np.arange(22050) / 22050) * 10000).astype(np.int16)
    out = convert(tone, 22050, 48000, 2)
    assert len(out) == 2 * 48000 and out.dtype == np.int16
    assert np.array_equal(out[0::2], out[1::2])
    left = out[0::2].astype(float)
    rising = np.sum((left[:-1] < 0) & (left[1:] >= 0))
    assert abs(rising - 440) <= 2  # still 440 Hz
    assert np.array_equal(convert(tone, 22050, 22050, 1), tone)


def test_with_speech_off_cues_are_printed_and_logged(tmp_path: Path) -> None:
    printed: list[str] = []
    log_path = tmp_path / "speech.jsonl"
    speaker = Speaker(
        SpeechSettings(enabled=False), tmp_path / "cache", log_path, printer=printed.append
    )
    speaker.start(["Run tall."])
    speaker.say(Cue(time.monotonic(), "tall", "Run tall.", "correction"))
    assert speaker.wait_quiet(5)
    speaker.say(Cue(time.monotonic(), "cad", "Cadence 158.", "program"))
    assert speaker.wait_quiet(5)
    stats = speaker.stats
    speaker.close()
    assert printed == ["Run tall.", "Cadence 158."]
    assert stats.device_state == "disabled" and stats.printed == 2 and stats.played == 0
    assert stats.rendered == 0 and not list((tmp_path / "cache").glob("*.wav"))
    events = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [(e["event"], e["cue_id"]) for e in events] == [
        ("emitted", "tall"),
        ("printed", "tall"),
        ("emitted", "cad"),
        ("printed", "cad"),
    ]
    assert all(e["t"] >= e["t_said"] for e in events)


def test_say_after_close_is_dropped_quietly(tmp_path: Path) -> None:
    printed: list[str] = []
    speaker = Speaker(SpeechSettings(enabled=False), tmp_path, None, printer=printed.append)
    speaker.close()
    speaker.say(Cue(time.monotonic(), "late", "Run tall.", "correction"))
    assert printed == [] and speaker.stats.printed == 0


def test_alsa_hardware_names_find_their_portaudio_device(tmp_path: Path) -> None:
    proc = tmp_path / "asound"
    proc.mkdir()
    (proc / "card2").mkdir()
    (proc / "Device").symlink_to("card2")
    usb = OutputDevice(7, "USB Audio Device: - (hw:2,0)", "ALSA", 2, 48000)
    devices = [*DEVICES, usb]
    assert find_device(devices, "plughw:CARD=Device,DEV=0", proc) == usb
    assert find_device(devices, "hw:2,0", proc) == usb
    assert find_device(devices, "plughw:2", proc) == usb
    assert find_device(devices, "plughw:CARD=Other,DEV=0", proc) is None
