"""Gait stage: foot contacts, activity, camera view and per-step form metrics from landmarks."""

from __future__ import annotations

from coachd.gait.analyzer import GaitAnalyzer
from coachd.gait.metrics import METRIC_NAMES, METRIC_VIEWS, foot_strike, valid_in

__all__ = ["METRIC_NAMES", "METRIC_VIEWS", "GaitAnalyzer", "foot_strike", "valid_in"]
