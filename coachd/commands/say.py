"""`coachd say "text"`: speak a test phrase; `--list-voices`, `--list-devices`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Optional

from coachd.commands import Command, settings_from_args
from coachd.errors import AudioError, UsageError
from coachd.messages import Cue
from coachd.settings import Settings


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="?", help="what to say")
    parser.add_argument("--list-voices", action="store_true", help="list the TTS voices")
    parser.add_argument("--list-devices", action="store_true", help="list audio output devices")
    parser.add_argument("--device", help="output device name (part) or index")
    parser.add_argument("--voice", help="voice id or name (see --list-voices)")
    parser.add_argument("--rate", type=int, metavar="WPM", help="speaking rate, words per minute")
    parser.add_argument("--volume", type=float, help="volume 0..1")
    parser.add_argument(
        "--kind",
        choices=["correction", "praise", "program", "greeting", "summary"],
        default="program",
        help="cue kind: correction plays the earcon first, praise the chime (default: program)",
    )
    parser.add_argument("--speech-log", metavar="PATH", help="JSON lines of the cue's events")


def voice_cache_dir(settings: Settings) -> Path:
    from coachd.service.store import state_directory

    if settings.speech.cache_dir:
        return Path(settings.speech.cache_dir)
    return state_directory(settings.service) / "voice-cache"


def _list_voices(settings: Settings) -> int:
    from coachd.speech.tts_worker import choose_voice, list_voices

    try:
        voices = list_voices()
    except Exception as exc:
        raise AudioError(f"the TTS engine (pyttsx3) cannot start: {exc}") from None
    try:
        chosen = choose_voice(voices, settings.speech.voice, settings.speech.language)
    except LookupError:
        chosen = None
    for voice in voices:
        mark = "*" if voice.id == chosen else " "
        print(f"{mark} {voice.id:<28} {voice.name:<36} {','.join(voice.languages)}")
    print("(* = the voice the settings pick; set speech.voice to an id or a name)")
    return 0


def _list_devices(settings: Settings) -> int:
    from coachd.speech.player import find_device, list_output_devices, new_portaudio

    try:
        pa = new_portaudio()
    except Exception as exc:
        raise AudioError(f"PortAudio (PyAudio) cannot start: {exc}") from None
    try:
        devices = list_output_devices(pa)
    finally:
        pa.terminate()
    chosen = find_device(devices, settings.speech.device)
    for device in devices:
        mark = "*" if chosen is not None and device.index == chosen.index else " "
        print(
            f"{mark} {device.index:>3}  {device.name:<40} {device.host_api:<8} "
            f"{device.channels:>3} ch {device.default_rate} Hz"
        )
    if not devices:
        print("no output devices")
    print(
        f"(* = the device speech.device={settings.speech.device!r} picks; "
        "set it to a number or part of a name)"
    )
    return 0


def _say(settings: Settings, text: str, kind: str, log_path: Optional[Path]) -> int:
    from coachd.speech import Speaker, spoken_text

    if not spoken_text(text, settings.speech.speak_numbers):
        raise UsageError(
            f"nothing to say in {text!r}: speech.speak_numbers is off and every part of it "
            "holds a number"
        )

    # A one-off phrase may need the TTS worker started first: allow it time.
    speech = settings.speech.model_copy(update={"max_delay_s": 30.0, "idle_close_s": 0.0})
    printed: list[str] = []
    speaker = Speaker(speech, voice_cache_dir(settings), log_path, printer=printed.append)
    try:
        speaker.say(Cue(time.monotonic(), "say", text, kind))  # type: ignore[arg-type]
        speaker.wait_quiet(timeout=speech.render_timeout_s + 30.0)
        stats = speaker.stats
    finally:
        speaker.close(finish_current=True, timeout=10.0)
    if stats.played:
        print(
            f"said {text!r} on {stats.device_name or 'the default device'} "
            f"(first audio {stats.latencies_ms[0]:.0f} ms after the cue; "
            f"{'rendered now' if stats.rendered else 'from the cache'})"
        )
        return 0
    for line in printed:
        print(f"[coach] {line}")
    raise AudioError(f"could not speak: {stats.last_error or 'unknown reason'}")


def _run(args: argparse.Namespace) -> int:
    loaded = settings_from_args(
        args,
        {
            "speech.device": args.device,
            "speech.voice": args.voice,
            "speech.rate_wpm": args.rate,
            "speech.volume": args.volume,
        },
    )
    if args.list_voices:
        return _list_voices(loaded.settings)
    if args.list_devices:
        return _list_devices(loaded.settings)
    if not args.text:
        raise UsageError(
            'coachd say: give a phrase ("coachd say \\"Shorter steps\\""), '
            "or --list-voices / --list-devices"
        )
    log_path = Path(args.speech_log) if args.speech_log else None
    return _say(loaded.settings, args.text, args.kind, log_path)


COMMAND = Command(
    "say", "speak a test phrase; list voices or output devices", _add_arguments, _run, 70
)
