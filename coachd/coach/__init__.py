"""Coach stage: rule packs of cues, the runner's baseline, the cue engine and programs.

GaitUpdate -> CueEngine.update(update, now) -> [Cue]. Packs are TOML data in cues/.
"""

from __future__ import annotations

from coachd.coach.baseline import Baseline
from coachd.coach.engine import CueEngine, EngineCounters
from coachd.coach.pack import Condition, CuePack, CueRule, load_packs, validate_file
from coachd.coach.programs import Metronome, RetroProgress, WeeklyLoad, advance_retro, weekly_load

__all__ = [
    "Baseline",
    "Condition",
    "CueEngine",
    "CuePack",
    "CueRule",
    "EngineCounters",
    "Metronome",
    "RetroProgress",
    "WeeklyLoad",
    "advance_retro",
    "load_packs",
    "validate_file",
    "weekly_load",
]
