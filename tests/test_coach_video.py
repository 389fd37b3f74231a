"""The cue issue's acceptance runs through the whole live chain: the synthetic runner's rendered
video -> the real pose model -> the gait stage -> sessions and the cue engine (`analyze`, the
same code `coachd analyze` and the daemon use).  Settings are the defaults unless a test says.

The full-length runs are slow; the short ones shorten the warm-up so `make test` checks the chain.
The 30-minute all-faults rate-limit run uses the landmark stream (the pose model is too slow for
it here); a real-chain all-faults run of reduced length checks the same limits end to end. The
landmark stream also covers what the pose-model runs leave out: the clean runner seen from the
left and the front, and the speed-gated heel-recovery rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from landmark_streams import landmark_run

from coachd.commands.analyze import analyze, cues_from_analysis
from coachd.gait.analyzer import GaitAnalyzer
from coachd.messages import Cue, GaitUpdate
from coachd.settings import Settings

CORRECTION_WINDOW_S = 30.0  # a fault is cued within this long after the warm-up ends
ENGINE_KINDS = ("correction", "praise", "program")  # what the engine's rate limits govern


@dataclass(frozen=True)
class Heard:
    """What one run said, with times relative to its first frame."""

    cues: list[Cue]
    t0: float
    warm_t: float  # when the engine's warm-up ended (session start + engine.warmup_s)

    def corrections(self) -> list[tuple[float, str]]:
        return [
            (round(c.t_emit - self.t0, 1), c.cue_id) for c in self.cues if c.kind == "correction"
        ]

    def praise(self) -> list[tuple[float, str]]:
        return [(round(c.t_emit - self.t0, 1), c.cue_id) for c in self.cues if c.kind == "praise"]

    def describe(self) -> str:
        return ", ".join(f"{c.t_emit - self.t0:.1f}s {c.kind}:{c.cue_id}" for c in self.cues)


def settings_with(**engine: Any) -> Settings:
    """Default settings with some engine fields changed."""
    settings = Settings()
    for name, value in engine.items():
        setattr(settings.engine, name, value)
    return settings


def heard(cues: list[Cue], t0: float, settings: Settings) -> Heard:
    greetings = [c for c in cues if c.kind == "greeting"]
    assert greetings, "no session started: the runner was never seen running"
    return Heard(cues, t0, greetings[0].t_emit - t0 + settings.engine.warmup_s)


def through_pose_model(params: str, settings: Settings) -> Heard:
    """The synthetic runner rendered and tracked by the real pose model, coached as live."""
    result = analyze(f"synthetic:?{params}", settings)
    assert result.t0 is not None
    return heard(result.cues, result.t0, settings)


def through_landmarks(params: str, settings: Settings) -> Heard:
    """The synthetic runner's landmarks (with pose-like jitter) instead of the pose model."""
    run = landmark_run(f"synthetic:?{params}", noise_px=2.0)
    gait = GaitAnalyzer(settings.gait, run.params.fps)
    updates: list[GaitUpdate] = [gait.update(frame) for frame in run.frames]
    return heard(cues_from_analysis(updates, settings), run.frames[0].t, settings)


def assert_rate_limits(cues: Sequence[Cue], settings: Settings) -> None:
    """Gap, cap per minute and per-cue cooldown never broken."""
    spoken = sorted((c for c in cues if c.kind in ENGINE_KINDS), key=lambda c: c.t_emit)
    times = [c.t_emit for c in spoken]
    eps = 1e-6
    for before, after in zip(times, times[1:]):
        assert after - before >= settings.engine.min_gap_s - eps, (before, after)
    for i, start in enumerate(times):
        in_minute = [t for t in times[i:] if t - start < 60.0]
        assert len(in_minute) <= settings.engine.max_per_minute, in_minute
    last_said: dict[str, float] = {}
    for cue in spoken:
        if cue.kind != "correction":
            continue
        if cue.cue_id in last_said:
            assert cue.t_emit - last_said[cue.cue_id] >= settings.engine.cooldown_s - eps, cue
        last_said[cue.cue_id] = cue.t_emit


def assert_single_fault(run: Heard, cue_id: str) -> None:
    said = run.corrections()
    assert said, f"no correction for {cue_id}: {run.describe()}"
    assert {name for _, name in said} == {cue_id}, run.describe()
    first = said[0][0]
    assert run.warm_t - 0.5 <= first <= run.warm_t + CORRECTION_WINDOW_S, run.describe()


def assert_fixed_and_praised(run: Heard, cue_ids: Sequence[str], fix_at: float) -> None:
    """Each fault was corrected before the fix, praised once after it, and never cued again."""
    for cue_id in cue_ids:
        before = [t for t, name in run.corrections() if name == cue_id and t < fix_at]
        assert before, f"{cue_id} never cued before the fix: {run.describe()}"
        praised = [t for t, name in run.praise() if name == cue_id]
        assert len(praised) == 1 and praised[0] > fix_at, run.describe()
        after = [t for t, name in run.corrections() if name == cue_id and t >= fix_at]
        assert after == [], run.describe()


# --- short runs: `make test` checks the chain (engine.warmup_s = 10 s) ---------------------

SHORT_WARMUP_S = 10.0


def test_clean_runner_hears_no_correction_short() -> None:
    settings = settings_with(warmup_s=SHORT_WARMUP_S)
    run = through_pose_model("seconds=35", settings)
    assert run.corrections() == [] and run.praise() == [], run.describe()


def test_fault_cued_then_praised_after_the_fix_short() -> None:
    settings = settings_with(warmup_s=SHORT_WARMUP_S)
    fix_at = 30.0
    run = through_pose_model(f"seconds=48&trunk_lean=20&fix_at={fix_at:g}", settings)
    said = run.corrections()
    assert said and {name for _, name in said} == {"waist_bend"}, run.describe()
    assert said[0][0] <= run.warm_t + CORRECTION_WINDOW_S, run.describe()
    assert_fixed_and_praised(run, ["waist_bend"], fix_at)
    assert_rate_limits(run.cues, settings)


# --- the scenarios at full length (default settings) -----------------------------


@pytest.mark.slow
def test_clean_runner_hears_no_correction_in_five_minutes() -> None:
    run = through_pose_model("seconds=300", Settings())
    assert run.corrections() == [] and run.praise() == [], run.describe()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("params", "cue_id"),
    [
        ("overstride=0.3", "overstride"),
        ("trunk_lean=20", "waist_bend"),
        ("view=front&shoulder_sway=12", "shoulder_sway"),
        ("cadence=150", "low_cadence"),
        ("bounce=0.15", "bounce"),
    ],
)
def test_single_fault_gets_its_own_cue(params: str, cue_id: str) -> None:
    settings = Settings()
    # Session start (~6 s) + warm-up (60 s) + the 30 s the cue may take.
    run = through_pose_model(f"seconds=100&{params}", settings)
    assert_single_fault(run, cue_id)
    assert_rate_limits(run.cues, settings)


@pytest.mark.slow
def test_two_faults_higher_priority_first_then_praise_after_the_fix() -> None:
    settings = Settings()
    fix_at = 100.0
    run = through_pose_model(
        f"seconds=135&overstride=0.3&trunk_lean=20&fix_at={fix_at:g}", settings
    )
    said = run.corrections()
    assert said and said[0][1] == "overstride", run.describe()  # priority 90 over waist_bend's 80
    assert {name for _, name in said} == {"overstride", "waist_bend"}, run.describe()
    assert_fixed_and_praised(run, ["overstride", "waist_bend"], fix_at)
    assert_rate_limits(run.cues, settings)


# --- the landmark stream: views and a speed-gated rule the pose-model runs leave out -------


def with_runner_height(settings: Settings) -> Settings:
    """Settings with the runner's height known: belt speed, so speed-gated rules judge too."""
    settings.gait.runner_height_cm = 175.0
    return settings


@pytest.mark.slow
@pytest.mark.parametrize("view", ["side-left", "front"])
def test_clean_runner_hears_no_correction_in_five_minutes_from_other_views(view: str) -> None:
    run = through_landmarks(f"seconds=300&view={view}", with_runner_height(Settings()))
    assert run.corrections() == [] and run.praise() == [], run.describe()


@pytest.mark.slow
def test_heel_recovery_gets_its_own_cue() -> None:
    settings = with_runner_height(Settings())
    run = through_landmarks("seconds=100&speed=14&cadence=178&heel_recovery=0.72", settings)
    assert_single_fault(run, "heel_recovery")
    assert_rate_limits(run.cues, settings)


ALL_FAULTS = "overstride=0.3&trunk_lean=20&cadence=150&bounce=0.15&asym=0.3&strike=heel"


@pytest.mark.slow
def test_rate_limits_hold_with_every_fault_through_the_pose_model() -> None:
    # engine.warmup_s = 10 s so that most of this 90 s run is coached; five faults the side
    # view sees, so the cap of 4 a minute (not only the gap) has to hold them back.
    settings = settings_with(warmup_s=SHORT_WARMUP_S)
    run = through_pose_model(f"seconds=90&{ALL_FAULTS}", settings)
    assert len(run.corrections()) >= 4, run.describe()
    assert_rate_limits(run.cues, settings)


@pytest.mark.slow
def test_rate_limits_hold_over_thirty_minutes_with_every_fault() -> None:
    # The landmark stream, not the pose model: 30 minutes of video would take ~12 min here.
    settings = Settings()
    run = through_landmarks(f"seconds=1800&shoulder_sway=12&{ALL_FAULTS}", settings)
    assert len(run.corrections()) >= 10, run.describe()
    assert_rate_limits(run.cues, settings)
