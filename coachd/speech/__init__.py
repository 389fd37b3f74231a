"""Speech stage: cues become spoken words (pyttsx3 renders, PyAudio plays), never blocking.

Imports are lazy so the TTS worker process (`python -m coachd.speech.tts_worker`) starts
without numpy or pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coachd.speech.speaker import Speaker, SpeechStats, spoken_text

__all__ = ["Speaker", "SpeechStats", "spoken_text"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from coachd.speech import speaker

        return getattr(speaker, name)
    raise AttributeError(f"module 'coachd.speech' has no attribute {name!r}")
