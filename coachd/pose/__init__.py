"""Pose stage: the runner's 33 BlazePose landmarks per frame, on the CPU.

`create_tracker(settings)` gives a PoseTracker; see coachd.pose.tracker.
"""

from __future__ import annotations

from coachd.pose.tracker import PoseTracker, create_tracker

__all__ = ["PoseTracker", "create_tracker"]
