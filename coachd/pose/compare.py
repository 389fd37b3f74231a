"""Measuring pose backends against each other on the same frames: time and agreement."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from coachd.body import torso_length
from coachd.messages import BODY_LANDMARKS, Frame, Pose, TrackedFrame
from coachd.pose.tracker import PoseTracker


def landmark_errors(reference: Pose, other: Pose) -> np.ndarray:
    """Distances of the 25 body landmarks from the reference's, in % of its torso length."""
    torso = max(float(torso_length(reference.xy)), 1.0)
    index = list(BODY_LANDMARKS)
    distance = np.linalg.norm(reference.xy[index] - other.xy[index], axis=1)
    return np.asarray(100.0 * distance / torso)


@dataclass
class BackendRun:
    """One backend's results and timings over a sequence of frames."""

    name: str
    results: list[TrackedFrame] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    def timed(self, warmup: int) -> np.ndarray:
        return np.asarray(self.wall_ms[warmup:] or self.wall_ms)

    def summary(self, warmup: int) -> dict[str, float]:
        wall = self.timed(warmup)
        cpu = np.asarray(self.cpu_ms[warmup:] or self.cpu_ms)
        found = sum(r.pose is not None for r in self.results)
        return {
            "median_ms": round(float(np.median(wall)), 2),
            "p95_ms": round(float(np.percentile(wall, 95)), 2),
            "fps": round(1000.0 / float(np.mean(wall)), 1),
            "cpu_use": round(float(cpu.sum() / max(wall.sum(), 1e-9)), 2),
            "cpu_ms_median": round(float(np.median(cpu)), 2),
            "frames_with_pose": found,
        }


def run_interleaved(
    frames: Sequence[Frame],
    trackers: Sequence[PoseTracker],
    progress: Optional[object] = None,
) -> list[BackendRun]:
    """Each frame through every tracker in turn, so CPU contention from others hits all alike."""
    runs = [BackendRun(t.name) for t in trackers]
    for count, frame in enumerate(frames, 1):
        for tracker, run in zip(trackers, runs):
            wall, cpu = time.perf_counter(), time.process_time()
            result = tracker.track(frame)
            run.cpu_ms.append((time.process_time() - cpu) * 1000.0)
            run.wall_ms.append((time.perf_counter() - wall) * 1000.0)
            run.results.append(result)
        if callable(progress):
            progress(count, len(frames))
    return runs


def agreement(reference: BackendRun, other: BackendRun) -> dict[str, float]:
    """Median and 95th percentile landmark distance (% torso) over frames both tracked."""
    errors = [
        landmark_errors(a.pose, b.pose)
        for a, b in zip(reference.results, other.results)
        if a.pose is not None and b.pose is not None
    ]
    if not errors:
        return {"median_pct_torso": float("nan"), "p95_pct_torso": float("nan"), "frames": 0}
    flat = np.concatenate(errors)
    return {
        "median_pct_torso": round(float(np.median(flat)), 3),
        "p95_pct_torso": round(float(np.percentile(flat, 95)), 3),
        "frames": len(errors),
    }
