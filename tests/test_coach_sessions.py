"""Hands-free sessions: start after running a while, summary after leaving; never for walkers."""

from __future__ import annotations

import random
import statistics
from collections import deque
from collections.abc import Iterator
from functools import partial
from typing import Callable, Optional

from coachd.coach import load_packs
from coachd.coach.sessions import GREETING_ID, SUMMARY_ID, SessionTracker
from coachd.messages import Activity, Cue, GaitUpdate, Stride
from coachd.settings import EngineSettings, ServiceSettings

FPS = 30.0
STEP_S = 60.0 / 170.0  # 170 steps a minute
DEFAULT_PACK = load_packs(EngineSettings())

Metrics = Callable[[float], dict[str, float]]


def steady(t: float) -> dict[str, float]:
    return {"cadence_spm": 170.0 + (t * 7.0) % 2.0 - 1.0, "overstride_ratio": 0.20}


class Treadmill:
    """GaitUpdates at 30 fps for a scripted runner, with a stride at every step."""

    def __init__(self, tracker: SessionTracker) -> None:
        self.tracker = tracker
        self.t = 100.0  # monotonic clocks do not start at 0
        self.next_step = self.t
        self.side = "left"
        self.cues: list[Cue] = []

    def frames(self, activity: Activity, seconds: float) -> Iterator[GaitUpdate]:
        end = self.t + seconds
        while self.t < end:
            self.t += 1.0 / FPS
            yield GaitUpdate(self.t, activity, "side-left" if activity != "absent" else None)

    def run(self, activity: Activity, seconds: float, metrics: Metrics = steady) -> list[Cue]:
        emitted = []
        for update in self.frames(activity, seconds):
            strides: tuple[Stride, ...] = ()
            if activity == "running" and update.t >= self.next_step:
                self.side = "right" if self.side == "left" else "left"
                strides = (Stride(update.t, self.side, "side-left", STEP_S, metrics(update.t)),)  # type: ignore[arg-type]
                self.next_step = update.t + STEP_S
            got = self.tracker.update(
                GaitUpdate(update.t, update.activity, update.view, strides=strides)
            )
            emitted.extend(got)
        self.cues.extend(emitted)
        return emitted

    def say(self, cue_id: str, text: str, kind: str = "correction") -> None:
        """A cue of the default pack, about its rule's metrics as the engine says it."""
        metrics = DEFAULT_PACK.rule(cue_id).metrics
        self.tracker.note_cue(Cue(self.t, cue_id, text, kind, metrics=metrics))  # type: ignore[arg-type]


def _tracker(start_s: float = 4.0, end_s: float = 20.0, runner: str = "") -> SessionTracker:
    return SessionTracker(
        ServiceSettings(session_start_s=start_s, session_end_s=end_s, runner_profile=runner)
    )


def test_no_session_for_standing_or_walking() -> None:
    mill = Treadmill(_tracker())
    assert mill.run("absent", 10) == []
    assert mill.run("standing", 30) == []
    assert mill.run("walking", 120) == []
    assert not mill.tracker.active
    assert mill.tracker.finish(mill.t) is None


def test_greeting_after_start_s_of_running_and_summary_after_end_s_gone() -> None:
    mill = Treadmill(_tracker(start_s=4.0, end_s=20.0, runner="Alex"))
    mill.run("standing", 3)
    first_running = mill.t + 1.0 / FPS
    before = mill.run("running", 3.9)
    assert before == [] and not mill.tracker.active
    (greeting,) = mill.run("running", 0.2)
    assert greeting.kind == "greeting" and greeting.cue_id == GREETING_ID
    assert "Alex" in greeting.text
    assert 4.0 <= greeting.t_emit - first_running <= 4.0 + 1.0 / FPS + 1e-9
    assert mill.tracker.started_at == first_running

    assert mill.run("running", 120) == []
    last_running = mill.t
    assert mill.run("absent", 19.9) == []
    assert mill.tracker.active
    (summary,) = mill.run("absent", 0.2)
    assert summary.kind == "summary" and summary.cue_id == SUMMARY_ID
    assert 20.0 <= summary.t_emit - last_running <= 20.0 + 1.0 / FPS + 1e-9
    assert not mill.tracker.active
    assert "170 steps a minute" in summary.text
    assert "2 minutes" in summary.text
    stored = mill.tracker.summary()
    assert stored["text"] == summary.text
    assert stored["duration_s"] == round(last_running - first_running, 1)
    assert stored["strides"] > 300  # the run-in's strides belong to the session too


def test_short_breaks_do_not_end_or_restart() -> None:
    mill = Treadmill(_tracker(start_s=4.0, end_s=20.0))
    # A one-frame misread in the run-in does not restart its clock ...
    mill.run("running", 2.0)
    mill.run("walking", 0.1)
    assert len(mill.run("running", 2.0)) == 1
    # ... a walk break or a short stop does not end the session ...
    assert mill.run("walking", 60) == []
    assert mill.run("standing", 15) == []
    assert mill.run("running", 10) == []
    assert mill.tracker.active


def test_a_stop_in_the_run_in_starts_it_again() -> None:
    mill = Treadmill(_tracker(start_s=4.0))
    mill.run("running", 3.0)
    mill.run("standing", 2.0)
    assert mill.run("running", 3.5) == []  # 6.5 s of running, but not 4 s in one go
    assert len(mill.run("running", 0.6)) == 1


def test_summary_names_what_improved_and_what_to_work_on() -> None:
    mill = Treadmill(_tracker(start_s=4.0, end_s=20.0))

    def improving(t: float) -> dict[str, float]:
        # Overstride falls from 0.30 to 0.15 over ten minutes; trunk lean stays bent over.
        progress = min(1.0, (t - 100.0) / 600.0)
        wobble = 0.01 * ((t * 13.0) % 1.0 - 0.5)
        return {
            "cadence_spm": 166.0 + 8.0 * progress,
            "overstride_ratio": 0.30 - 0.15 * progress + wobble,
            "trunk_lean_deg": 14.0 + 10 * wobble,
        }

    mill.run("running", 60, improving)
    mill.say("overstride", "Land under your hips.")
    mill.say("waist_bend", "Run tall, string on the top of your head.")
    mill.say("waist_bend", "Run tall, string on the top of your head.")
    mill.say("overstride", "That's it.", kind="praise")
    mill.run("running", 540, improving)
    (summary,) = [c for c in mill.run("absent", 25) if c.kind == "summary"]
    stored = mill.tracker.summary()
    assert stored["improved"][0] == "overstride_ratio"
    assert "trunk_lean_deg" not in stored["improved"]
    assert stored["cues"] == {"overstride": 1, "waist_bend": 2}
    assert stored["work_on"] == "waist_bend"
    assert "closer under your hips" in summary.text
    assert "Next time, work on this: run tall" in summary.text
    assert "10 minutes" in summary.text


def test_a_fault_that_was_fixed_is_not_what_to_work_on_next_time() -> None:
    mill = Treadmill(_tracker(start_s=4.0, end_s=20.0))

    def fixed_after(t: float) -> dict[str, float]:
        # Overstriding for the first two minutes, then landing under the hips for good.
        wobble = 0.01 * ((t * 13.0) % 1.0 - 0.5)
        return {**steady(t), "overstride_ratio": (0.32 if t < 220.0 else 0.08) + wobble}

    mill.run("running", 60, fixed_after)
    mill.say("overstride", "Land under your hips.")
    mill.say("overstride", "That's it.", kind="praise")
    mill.run("running", 540, fixed_after)
    (summary,) = [c for c in mill.run("absent", 25) if c.kind == "summary"]
    stored = mill.tracker.summary()
    assert "overstride_ratio" in stored["improved"]
    assert stored["work_on"] is None
    assert "work on" not in summary.text and "closer under your hips" in summary.text


def test_without_corrections_a_clear_fault_is_still_named() -> None:
    mill = Treadmill(_tracker())
    mill.run("running", 90, lambda t: {"cadence_spm": 160.0, "overstride_ratio": 0.32})
    (summary,) = [c for c in mill.run("absent", 25) if c.kind == "summary"]
    assert "land closer under your hips" in summary.text
    assert mill.tracker.summary()["improved"] == []


def test_finish_ends_an_active_session() -> None:
    mill = Treadmill(_tracker())
    mill.run("running", 30)
    summary: Optional[Cue] = mill.tracker.finish(mill.t)
    assert summary is not None and summary.kind == "summary"
    assert not mill.tracker.active
    assert mill.tracker.finish(mill.t) is None


def test_a_cue_is_about_the_metric_its_rule_reads() -> None:
    """heel_strike reads the foot angle: shins landing more upright do not fix it, so it is
    still the thing to work on (a guess from the id's words took it for the shank angle)."""
    mill = Treadmill(_tracker())

    def shins_upright(t: float) -> dict[str, float]:
        progress = min(1.0, (t - 100.0) / 300.0)
        wobble = (t * 13.0) % 1.0 - 0.5
        return {
            "cadence_spm": 170.0,
            "shank_angle_deg": 12.0 - 8.0 * progress + wobble,
            "foot_angle_deg": 16.0 + wobble,
            "trunk_lean_deg": 8.0 + wobble,
        }

    mill.run("running", 30, shins_upright)
    for _ in range(3):
        mill.say("heel_strike", "Land softly, like on thin ice.")
    mill.say("waist_bend", "Hips forward, stand tall.")
    mill.run("running", 270, shins_upright)
    (summary,) = [c for c in mill.run("absent", 25) if c.kind == "summary"]
    stored = mill.tracker.summary()
    assert stored["improved"] == ["shank_angle_deg"]
    assert stored["work_on"] == "heel_strike"
    assert "Next time, work on this: land softly, like on thin ice." in summary.text


def leaning(lean: float, t: float) -> dict[str, float]:
    return {"cadence_spm": 170.0, "trunk_lean_deg": lean}


def test_without_corrections_trunk_lean_is_named_past_the_good_range() -> None:
    """Trunk lean counts as a fault in the summary where the catalogue's good range ends
    (14 degrees, where the default pack's waist_bend starts too), not before."""
    said = []
    for lean in (13.0, 15.0):
        mill = Treadmill(_tracker())
        mill.run("running", 90, partial(leaning, lean))
        (summary,) = [c for c in mill.run("absent", 25) if c.kind == "summary"]
        said.append(summary.text)
    assert "Your form held well" in said[0]
    assert "Next time, work on this: run tall" in said[1]


def test_tick_ends_a_session_when_frames_stop() -> None:
    mill = Treadmill(_tracker(end_s=20.0))
    mill.run("running", 30)
    last = mill.t
    assert mill.tracker.tick(last + 0.5) == []  # frames are still coming
    ended = []
    for k in range(1, 40):  # the camera is gone: only the daemon's ticks, once a second
        ended += mill.tracker.tick(last + k)
    assert [c.kind for c in ended] == ["summary"]
    assert 20.0 <= ended[0].t_emit - last <= 21.0


# --- claims only what was measured ------------------------------------------------------------


def heel_asymmetry_readings(
    right_longer: Callable[[int], float], noise: Callable[[int], float], seed: int
) -> Iterator[float]:
    """heel_recovery_asymmetry_pct step by step as the gait stage reports it: |left - right| /
    mean x 100 of each side's mean over the last 8 steps, each step read with pose noise."""
    rng = random.Random(seed)
    sides: tuple[deque[float], deque[float]] = (deque(maxlen=4), deque(maxlen=4))
    step = 0
    while True:
        right = step % 2
        truth = 0.55 * (1.0 + (right_longer(step) if right else 0.0))
        sides[right].append(rng.gauss(truth, noise(step)))
        step += 1
        if min(len(side) for side in sides) >= 2:
            left_mean, right_mean = (statistics.fmean(side) for side in sides)
            yield abs(left_mean - right_mean) / ((left_mean + right_mean) / 2.0) * 100.0


def _asymmetric_run(seconds: float, readings: Iterator[float]) -> tuple[Cue, dict[str, object]]:
    mill = Treadmill(_tracker(start_s=1.0))

    def metrics(t: float) -> dict[str, float]:
        return {"cadence_spm": 170.0, "heel_recovery_asymmetry_pct": next(readings)}

    mill.run("running", seconds, metrics)
    (summary,) = [c for c in mill.run("absent", 25) if c.kind == "summary"]
    return summary, mill.tracker.summary()


def test_an_even_runner_is_not_told_their_legs_evened_out() -> None:
    """Per-step noise, a little more while settling in (the first 40 steps): the rolling
    asymmetry drifts down by chance, which is no change in the runner."""
    for seconds in (9.0, 120.0, 600.0):
        for seed in range(4):
            readings = heel_asymmetry_readings(
                lambda step: 0.0, lambda step: 0.07 if step < 40 else 0.04, seed
            )
            summary, stored = _asymmetric_run(seconds, readings)
            assert "heel_recovery_asymmetry_pct" not in stored["improved"], (seconds, seed)  # type: ignore[operator]
            assert "evened out" not in summary.text


def test_legs_that_really_even_out_are_named() -> None:
    readings = heel_asymmetry_readings(
        lambda step: 0.25 if step < 700 else 0.0, lambda step: 0.04, seed=0
    )
    summary, stored = _asymmetric_run(600.0, readings)
    assert stored["improved"] == ["heel_recovery_asymmetry_pct"]
    assert "your left and right legs evened out" in summary.text


def test_no_praise_for_a_session_without_measured_steps() -> None:
    tracker = _tracker(start_s=1.0)
    cues: list[Cue] = []
    t = 100.0
    while t < 160.0:  # a minute "running" (say, the view lost the legs): not one stride
        t += 1.0 / FPS
        cues += tracker.update(GaitUpdate(t, "running", "side-left"))
    summary = tracker.finish(t)
    assert summary is not None and tracker.summary()["strides"] == 0
    assert "held well" not in summary.text and "Well done" not in summary.text
    assert "could not see enough of your steps" in summary.text


def test_no_form_praise_when_only_cadence_was_measured() -> None:
    mill = Treadmill(_tracker(start_s=1.0))
    mill.run("running", 120, lambda t: {"cadence_spm": 170.0})
    (summary,) = [c for c in mill.run("absent", 25) if c.kind == "summary"]
    assert "held well" not in summary.text and "170 steps a minute" in summary.text
