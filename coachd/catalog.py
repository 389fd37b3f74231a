"""The metric catalogue: every per-step metric the gait stage reports, defined once.

One record per metric (docs/metrics.md defines how each is measured): its JSON key, unit, the
views that can see it, the range a cue threshold may sensibly take, what good form is and
which way is better, and the words reports, the overlay and session summaries use. The gait,
coach and service stages read it; it imports no stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional, Union

from coachd.messages import VIEWS, View

SIDE_VIEWS: tuple[View, ...] = ("side-left", "side-right")
FRONTAL_VIEWS: tuple[View, ...] = ("front", "rear")

# "lower" or "higher" is better, or a value to approach; None: neither way is better.
Better = Union[Literal["lower", "higher"], float, None]


@dataclass(frozen=True)
class Metric:
    """One per-step metric and everything said about it outside the code that measures it."""

    name: str  # the JSON key in Stride.metrics, cue packs and `coachd analyze` output
    label: str  # a report's heading, with the unit
    unit: str
    views: tuple[View, ...]  # never reported from any other view
    plausible: tuple[float, float]  # a cue pack's absolute thresholds must lie in it
    good: tuple[float, float] = (-math.inf, math.inf)  # good form (running-form.md), if known
    better: Better = None
    better_only_when_cued: bool = False  # its change is progress only when a cue asked for it
    improved: Optional[str] = None  # a summary's words when it got better
    # A change smaller than this is not called an improvement, however many steps (about the
    # spread of one step's reading through the pose model), in the metric's unit.
    resolution: float = 0.0
    steps_averaged: int = 1  # each value is a rolling mean over this many steps (not independent)
    advice: Optional[str] = None  # a summary's words for next time when it is not good
    overlay: Optional[tuple[str, str]] = None  # (short label, format) on the analysis video

    def seen_in(self, view: Optional[View]) -> bool:
        return view is not None and view in self.views

    def is_good(self, value: float) -> bool:
        return self.good[0] <= value <= self.good[1]

    def badness(self, value: float, cued: bool = False) -> Optional[float]:
        """How far from better `value` is (smaller is better), or None: no better way."""
        if self.better_only_when_cued and not cued:
            return None
        if self.better == "lower":
            return value
        if self.better == "higher":
            return -value
        if isinstance(self.better, float):
            return abs(value - self.better)
        return None


_LAND_UNDER = "land closer under your hips"

# In the order reports and `coachd analyze` list them.
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "cadence_spm",
            "Cadence (steps/min)",
            "steps/min",
            VIEWS,
            (60.0, 260.0),
            better="higher",
            better_only_when_cued=True,  # no universal target: quicker only when asked for
            improved="your steps got quicker",
            resolution=2.0,
            steps_averaged=4,
            overlay=("cadence", "{:.0f} spm"),
        ),
        Metric(
            "overstride_ratio",
            "Overstride (ankle ahead of hips / leg length)",
            "of leg length",
            SIDE_VIEWS,
            (-0.5, 1.0),
            good=(-math.inf, 0.25),
            better="lower",
            improved="you landed closer under your hips",
            resolution=0.03,
            advice=_LAND_UNDER,
            overlay=("overstride", "{:.2f} L"),
        ),
        Metric(
            "overstride_cm",
            "Overstride (cm)",
            "cm",
            SIDE_VIEWS,
            (-60.0, 120.0),
        ),
        Metric(
            "shank_angle_deg",
            "Shank angle at landing (deg)",
            "deg",
            SIDE_VIEWS,
            (-45.0, 60.0),
            good=(-math.inf, 15.0),
            better="lower",
            improved="your shins landed more upright",
            resolution=2.0,
            advice=_LAND_UNDER,
            overlay=("shank", "{:+.0f} deg"),
        ),
        Metric(
            "trunk_lean_deg",
            "Trunk lean (deg)",
            "deg",
            SIDE_VIEWS,
            (-30.0, 60.0),
            good=(-math.inf, 14.0),  # twice the 7 degrees runners settle at is a fold
            better=7.0,
            improved="you ran taller",
            resolution=2.0,
            advice="run tall, with the lean coming from your ankles",
            overlay=("trunk lean", "{:+.0f} deg"),
        ),
        Metric(
            "foot_angle_deg",
            "Foot angle at landing (deg, toe up +)",
            "deg",
            SIDE_VIEWS,
            (-60.0, 60.0),
            overlay=("foot angle", "{:+.0f} deg"),
        ),
        Metric(
            "vertical_oscillation_ratio",
            "Vertical oscillation (/ leg length)",
            "of leg length",
            VIEWS,
            (0.0, 0.5),
            better="lower",
            improved="you bounced less",
            resolution=0.01,
            overlay=("bounce", "{:.3f} L"),
        ),
        Metric(
            "vertical_oscillation_cm",
            "Vertical oscillation (cm)",
            "cm",
            VIEWS,
            (0.0, 60.0),
        ),
        Metric(
            "knee_lift_deg",
            "Knee lift (deg)",
            "deg",
            SIDE_VIEWS,
            (0.0, 120.0),
            overlay=("knee lift", "{:.0f} deg"),
        ),
        Metric(
            "heel_recovery_ratio",
            "Heel recovery (heel-hip / leg length)",
            "of leg length",
            SIDE_VIEWS,
            (0.0, 1.5),
            overlay=("heel recovery", "{:.2f} L"),
        ),
        Metric(
            "heel_recovery_asymmetry_pct",
            "Heel recovery asymmetry (%)",
            "%",
            SIDE_VIEWS,
            (0.0, 200.0),
            better="lower",
            improved="your left and right legs evened out",
            resolution=10.0,
            steps_averaged=8,
        ),
        Metric(
            "contact_time_ms",
            "Ground contact time (ms)",
            "ms",
            SIDE_VIEWS,
            (50.0, 1000.0),
            better="lower",
            improved="your feet left the belt sooner",
            resolution=15.0,
            overlay=("contact", "{:.0f} ms"),
        ),
        Metric(
            "duty_factor",
            "Duty factor",
            "of the stride",
            SIDE_VIEWS,
            (0.0, 1.0),
            overlay=("duty", "{:.2f}"),
        ),
        Metric(
            "belt_speed_kmh",
            "Belt speed (km/h)",
            "km/h",
            SIDE_VIEWS,
            (0.0, 40.0),
            overlay=("belt", "{:.1f} km/h"),
        ),
        Metric(
            "shoulder_tilt_p2p_deg",
            "Shoulder tilt, peak to peak (deg)",
            "deg",
            FRONTAL_VIEWS,
            (0.0, 60.0),
            better="lower",
            improved="your shoulders stayed more level",
            resolution=1.5,
            overlay=("shoulder tilt", "{:.1f} deg"),
        ),
        Metric(
            "shoulder_sway_ratio",
            "Shoulder sway (/ shoulder width)",
            "of shoulder width",
            FRONTAL_VIEWS,
            (0.0, 2.0),
            better="lower",
            improved="your shoulders swayed less",
            resolution=0.05,
            overlay=("shoulder sway", "{:.2f}"),
        ),
        Metric(
            "shoulder_elevation_ratio",
            "Shoulder elevation (/ torso length)",
            "of torso length",
            FRONTAL_VIEWS,
            (0.0, 1.5),
            better="higher",
            improved="your shoulders relaxed",
            resolution=0.05,
            overlay=("shoulder elev.", "{:.2f}"),
        ),
        Metric(
            "contact_time_asymmetry_pct",
            "Contact time asymmetry (%)",
            "%",
            FRONTAL_VIEWS,
            (0.0, 200.0),
            better="lower",
            improved="your left and right steps evened out",
            resolution=10.0,
            steps_averaged=8,
        ),
    )
}
METRIC_NAMES: tuple[str, ...] = tuple(METRICS)


def label(name: str) -> str:
    """The metric's readable name, or its key when it is not catalogued."""
    return METRICS[name].label if name in METRICS else name


def visible(metric: str, view: Optional[View]) -> bool:
    """Whether `view` can see `metric` (an unknown metric is seen nowhere)."""
    spec = METRICS.get(metric)
    return spec is not None and spec.seen_in(view)
