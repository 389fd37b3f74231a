"""Short synthesised sounds: the earcon before a correction, the praise chime, a metronome click.

All return mono int16 samples at the requested rate, scaled by `volume` (0..1).
"""

from __future__ import annotations

import numpy as np

_PEAK = 0.45  # of full scale: tones sit a little below espeak's speech level


def _to_int16(signal: np.ndarray, volume: float) -> np.ndarray:
    scaled = np.clip(signal * _PEAK * max(0.0, min(1.0, volume)), -1.0, 1.0)
    return (scaled * 32767.0).astype(np.int16)


def _note(freq_hz: float, seconds: float, rate: int, decay_s: float) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    attack = np.minimum(1.0, t / 0.005)  # 5 ms attack: no click at the start
    envelope = attack * np.exp(-t / decay_s)
    release = np.minimum(1.0, (seconds - t) / 0.01)  # 10 ms release: no click at the end
    return np.sin(2 * np.pi * freq_hz * t) * envelope * release


def silence(seconds: float, rate: int) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.int16)


def earcon(rate: int, volume: float = 1.0) -> np.ndarray:
    """Two soft high blips (~0.2 s with the gap after): 'listen, a correction follows'."""
    blip = _note(1046.5, 0.06, rate, 0.05)
    gap = np.zeros(int(0.04 * rate))
    tail = np.zeros(int(0.08 * rate))
    return _to_int16(np.concatenate([blip, gap, blip, tail]), volume)


def praise_chime(rate: int, volume: float = 1.0) -> np.ndarray:
    """A rising major third with a bell-like decay (~0.35 s)."""
    low = _note(659.3, 0.14, rate, 0.12)
    high = _note(830.6, 0.22, rate, 0.15) + 0.3 * _note(1661.2, 0.22, rate, 0.06)
    tail = np.zeros(int(0.06 * rate))
    return _to_int16(np.concatenate([low, high / 1.3, tail]), volume)


def click(rate: int, volume: float = 1.0) -> np.ndarray:
    """A 15 ms woodblock-like tick for the cadence metronome."""
    t = np.arange(int(0.015 * rate)) / rate
    signal = np.sin(2 * np.pi * 1800.0 * t) * np.exp(-t / 0.003)
    return _to_int16(signal, volume)
