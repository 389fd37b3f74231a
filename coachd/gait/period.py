"""The step rate read off the whole signal, to cross-check the count of foot contacts.

The hips rise and fall once a step.  Their height over the last seconds, put on an even time
grid (frames may have been dropped), has its strongest autocorrelation at a lag of one step
(or two, when left and right steps differ): the shortest lag whose peak comes near the
strongest is the step time, or on some bodies and cameras the stride time, which the caller
allows for.  Missed or spurious contacts change the event count, not this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

MIN_PEAK = 0.5  # a weaker autocorrelation peak is no clear rhythm
NEAR_STRONGEST = 0.8  # a shorter lag's peak this close to the strongest is the step


@dataclass(frozen=True)
class Rhythm:
    step_s: float
    strength: float  # the autocorrelation at that lag, 0..1

    @property
    def cadence_spm(self) -> float:
        return 60.0 / self.step_s


def rhythm(
    times: np.ndarray, values: np.ndarray, min_step_s: float, max_step_s: float
) -> Optional[Rhythm]:
    """The step time of a signal that repeats once a step, or None without a clear one."""
    if times.size < 8:
        return None
    dt = float(np.median(np.diff(times)))
    span = float(times[-1] - times[0])
    if dt <= 0 or span < 2.5 * max_step_s:
        return None
    grid = np.arange(times[0], times[-1], dt)
    signal = np.interp(grid, times, values)
    signal = signal - np.polyval(np.polyfit(grid - grid[0], signal, 1), grid - grid[0])
    n = signal.size
    spectrum = np.fft.rfft(signal, 2 * n)
    auto = np.fft.irfft(spectrum * np.conj(spectrum))[:n]
    if auto[0] <= 0:
        return None
    # Unbiased: each lag divided by how many pairs it had.
    auto = auto / auto[0] * n / (n - np.arange(n))
    lo, hi = max(1, int(min_step_s / dt)), min(n - 2, int(np.ceil(max_step_s / dt)))
    peaks = [k for k in range(lo, hi + 1) if auto[k] >= auto[k - 1] and auto[k] >= auto[k + 1]]
    if not peaks:
        return None
    strongest = max(auto[k] for k in peaks)
    if strongest < MIN_PEAK:
        return None
    k = next(k for k in peaks if auto[k] >= NEAR_STRONGEST * strongest)
    # Between grid points: the vertex of the parabola through the peak and its neighbours.
    a, b, c = auto[k - 1], auto[k], auto[k + 1]
    offset = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c < 0 else 0.0
    return Rhythm((k + offset) * dt, float(min(1.0, b)))
