"""The default pack end to end: the synthetic runner's landmarks through the gait stage into the
cue engine (no pose model: the pose stage is checked on its own)."""

from __future__ import annotations

import pytest
from landmark_streams import landmark_run

from coachd.coach import CueEngine, load_packs
from coachd.gait.analyzer import GaitAnalyzer
from coachd.messages import Cue
from coachd.settings import EngineSettings, GaitSettings


def coach(spec: str) -> tuple[list[Cue], float]:
    settings = EngineSettings()
    engine = CueEngine(settings, load_packs(settings))
    run = landmark_run(spec, noise_px=2.0)
    gait = GaitAnalyzer(GaitSettings(runner_height_cm=175.0), 30.0)
    cues: list[Cue] = []
    for frame in run.frames:
        cues += engine.update(gait.update(frame), now=frame.t)
    return cues, run.frames[0].t


@pytest.mark.slow
@pytest.mark.parametrize("view", ["side-left", "front"])
def test_clean_synthetic_runner_hears_nothing(view: str) -> None:
    cues, _ = coach(f"synthetic:?seconds=300&view={view}")
    assert cues == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("params", "cue_id"),
    [
        ("overstride=0.3", "overstride"),
        ("trunk_lean=20", "waist_bend"),
        ("cadence=150", "low_cadence"),
        ("bounce=0.15", "bounce"),
        ("view=front&shoulder_sway=12", "shoulder_sway"),
        ("speed=14&cadence=178&heel_recovery=0.72", "heel_recovery"),
    ],
)
def test_single_synthetic_fault_gets_its_own_cue(params: str, cue_id: str) -> None:
    cues, start = coach(f"synthetic:?seconds=100&{params}")
    assert cues and {c.cue_id for c in cues} == {cue_id}
    assert start + 60.0 <= cues[0].t_emit <= start + 90.0
