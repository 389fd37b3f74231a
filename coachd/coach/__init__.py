"""Coach stage, what is said: rule packs of cues, the runner's baseline, the cue engine,
programs, and hands-free sessions with their greeting and summary.

GaitUpdate -> Coaching.update(update) -> CoachingStep (cues, session start and end). Packs are
TOML data in cues/.
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
