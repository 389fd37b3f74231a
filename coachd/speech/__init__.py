"""Speech stage: cues become spoken words (pyttsx3 renders, PyAudio plays), never blocking."""

from __future__ import annotations

from coachd.speech.speaker import Speaker, SpeechStats, spoken_text

__all__ = ["Speaker", "SpeechStats", "spoken_text"]
