"""The hips' bounce clock (front and rear views): one low point per step, on time."""

from __future__ import annotations

import numpy as np
import pytest

from coachd.gait.bounce import MAX_WAIT_S, BounceClock

FPS = 30.0
LEG_PX = 180.0
STEP_S = 0.35


def bounce(seconds: float, noise_px: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Hip heights of a runner seen from behind: 8% of the leg peak to peak, with the broad low
    of mid-stance (flat within a pixel for three frames) and landmark noise."""
    t = np.arange(0.0, seconds, 1.0 / FPS)
    amplitude = 0.04 * LEG_PX
    height = np.maximum(amplitude * np.cos(2.0 * np.pi * t / STEP_S), -0.85 * amplitude)
    return t, height + np.random.default_rng(seed).normal(0.0, noise_px, t.size)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_step_gives_one_low_point_on_time(seed: int) -> None:
    t, height = bounce(20.0, noise_px=0.7, seed=seed)
    clock = BounceClock(min_step_s=0.25)
    found = []
    for now, h in zip(t, height):
        low = clock.update(float(now), float(h), LEG_PX)
        if low is not None:
            found.append((low, float(now)))
    truth = (np.arange(int(t[-1] / STEP_S) + 1) + 0.5) * STEP_S
    lows = np.array([low for low, _ in found])
    missed = [x for x in truth if 0.5 < x < t[-1] - 0.5 and np.min(np.abs(lows - x)) > 1.5 / FPS]
    assert not missed  # every step's low point, within 1.5 frames
    extra = [x for x in lows if np.min(np.abs(truth - x)) > 1.5 / FPS]
    assert not extra  # and nothing else
    assert len(lows) == len(set(np.round(lows / STEP_S - 0.5)))  # once each
    assert max(now - low for low, now in found) <= MAX_WAIT_S


def test_a_runner_standing_still_gives_no_low_points() -> None:
    t, _ = bounce(10.0, noise_px=0.0)
    noise = np.random.default_rng(3).normal(0.0, 0.7, t.size)
    clock = BounceClock(min_step_s=0.25)
    assert all(clock.update(float(now), float(h), LEG_PX) is None for now, h in zip(t, noise))


def test_the_hips_out_of_view_start_the_search_afresh() -> None:
    t, height = bounce(3.0, noise_px=0.0)
    clock = BounceClock(min_step_s=0.25)
    lows = []
    for now, h in zip(t, height):
        hidden = 1.0 <= now < 1.5
        low = clock.update(float(now), None if hidden else float(h), LEG_PX)
        if low is not None:
            lows.append(low)
    assert not [low for low in lows if 1.0 <= low < 1.5]
    assert len([low for low in lows if low >= 1.5]) >= 3


def test_a_fast_camera_is_followed_too() -> None:
    # camera.fps goes up to 240: the rise that confirms a broad low spans 20 frames and more.
    t, height = bounce(10.0, noise_px=0.0)
    fast = np.arange(0.0, 10.0, 1.0 / 240.0)
    clock = BounceClock(min_step_s=0.25)
    heights = np.interp(fast, t, height)
    lows = [low for now, h in zip(fast, heights) if (low := clock.update(float(now), h, LEG_PX))]
    truth = (np.arange(len(lows) + 1) + 0.5) * STEP_S
    assert len(lows) >= 27
    # Within the flat bottom (the lowest height holds for about 60 ms).
    assert all(np.min(np.abs(truth - low)) <= 0.04 for low in lows)
