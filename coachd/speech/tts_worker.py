"""The TTS worker process: pyttsx3 (espeak-ng on Linux) renders phrases to WAV files.

pyttsx3's espeak driver keeps process-global state and plays through a blocking `aplay`,
so coachd never calls it in the daemon: this module runs as its own process
(`python -m coachd.speech.tts_worker`) and only ever uses `save_to_file`.
Protocol, one JSON object per line: the parent sends the voice settings, the worker answers
{"ready": true, "voice": ID} or {"error": TEXT}; then each {"text", "path"} request gets
{"ok": true} or {"ok": false, "error": TEXT}.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

_ATTEMPTS = 3
_WAV_HEADER_BYTES = 44
_NICENESS = 10  # renders are background work: the camera pipeline comes first


@dataclass(frozen=True)
class VoiceInfo:
    id: str
    name: str
    languages: tuple[str, ...]
    gender: Optional[str] = None


def _engine() -> Any:
    import pyttsx3

    return pyttsx3.init()


def list_voices(engine: Any = None) -> list[VoiceInfo]:
    """Every voice the TTS engine offers."""
    engine = engine or _engine()
    found = []
    for voice in engine.getProperty("voices"):
        languages = tuple(
            lang.decode(errors="ignore") if isinstance(lang, bytes) else str(lang)
            for lang in (voice.languages or ())
        )
        found.append(VoiceInfo(str(voice.id), str(voice.name), languages, voice.gender))
    return found


def choose_voice(voices: list[VoiceInfo], wanted: str, language: str) -> Optional[str]:
    """The voice id for the settings: `wanted` by id or name, else the best for `language`.

    None means the engine's default; LookupError when `wanted` names no voice.
    """
    if wanted:
        key = wanted.lower()
        for match in (
            lambda v: v.id.lower() == key,
            lambda v: v.name.lower() == key,
            lambda v: v.id.lower().rsplit("/", 1)[-1] == key,
            lambda v: key in v.id.lower() or key in v.name.lower(),
        ):
            hits = [v for v in voices if match(v)]
            if hits:
                return hits[0].id
        raise LookupError(f"speech.voice {wanted!r} names no voice; see `coachd say --list-voices`")
    if not language:
        return None
    lang = language.lower()
    for match in (
        lambda v: lang in (x.lower() for x in v.languages),
        lambda v: v.id.lower().rsplit("/", 1)[-1] == lang,
        lambda v: any(x.lower().startswith(lang + "-") for x in v.languages),
    ):
        hits = [v for v in voices if match(v)]
        if hits:
            return hits[0].id
    return None


def _reply(out: Any, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def serve(requests: Any, out: Any) -> int:
    """Answer render requests from `requests` until it closes."""
    config = json.loads(requests.readline() or "{}")
    try:
        engine = _engine()
        voice = choose_voice(
            list_voices(engine), config.get("voice", ""), config.get("language", "")
        )
        if voice:
            engine.setProperty("voice", voice)
        engine.setProperty("rate", int(config.get("rate", 170)))
        engine.setProperty("volume", float(config.get("volume", 1.0)))
    except Exception as exc:
        _reply(out, {"error": f"{type(exc).__name__}: {exc}"})
        return 1
    _reply(out, {"ready": True, "voice": voice or str(engine.getProperty("voice") or "")})
    for line in requests:
        request = json.loads(line)
        target = Path(request["path"])
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            # pyttsx3's espeak driver now and then finishes an utterance without audio
            # (an empty or missing file); a second attempt gets it.
            for _attempt in range(_ATTEMPTS):
                engine.save_to_file(request["text"], str(partial))
                engine.runAndWait()
                if partial.is_file() and partial.stat().st_size > _WAV_HEADER_BYTES:
                    break
            else:
                raise RuntimeError(f"the engine produced no audio ({_ATTEMPTS} attempts)")
            os.replace(partial, target)  # atomic: a reader never sees half a file
            _reply(out, {"ok": True})
        except Exception as exc:
            partial.unlink(missing_ok=True)
            _reply(out, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    return 0


def main() -> int:
    with contextlib.suppress(OSError):
        os.nice(_NICENESS)
    # pyttsx3 prints "Audio saved to ..." on stdout: keep fd 1 for the protocol only.
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    return serve(sys.stdin, protocol)


if __name__ == "__main__":
    sys.exit(main())
