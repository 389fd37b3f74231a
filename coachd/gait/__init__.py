"""Gait stage: foot contacts, activity, camera view and per-step form metrics from landmarks."""

from __future__ import annotations

from coachd.gait.analyzer import GaitAnalyzer
from coachd.gait.metrics import foot_strike

__all__ = ["GaitAnalyzer", "foot_strike"]
