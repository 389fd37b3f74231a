"""The field gait benchmark: varied synthetic runners through the real pose model and the real
coaching chain, scored against the truth measured on the skeleton each runner was drawn from.

A variant is a `vary=SEED` runner, clean or with one form fault, optionally at 30 fps with a
share of its frames dropped at random before tracking (a busy machine). Each is rendered,
tracked, run through gait and coaching exactly as `coachd analyze` does (its chain, the
warm-up's contacts included, and its record of what was measured and said), then compared:
steps found, missed and spurious against the truth's contacts, contact timing, cadence, each
metric, and whether the fault was cued (or a clean runner corrected).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from coachd.bench.synthetic_truth import simulate_truth
from coachd.messages import GaitEvent, Stride
from coachd.settings import Settings

if TYPE_CHECKING:
    from coachd.commands.analyze import Analysis

# Faults a side camera must cue: (source keys, the cue pack rule that should speak). Each is
# clear of its rule's bar by more than the goal's error (overstride's bar rises to 0.29 at
# the fastest belt a varied runner gets, 14 km/h).
FAULTS: dict[str, tuple[str, str]] = {
    "overstride": ("overstride=0.35", "overstride"),
    "trunk_lean": ("trunk_lean=20", "waist_bend"),
    "bounce": ("bounce=0.16", "bounce"),
}
# The cue engine's quiet baseline, shortened so that a clip of 20 s can be cued at all (the
# default is a minute); the runner settles and a session starts first either way.
WARMUP_S = 5.0
CLEAN_SHARE = 0.4  # share of variants that run clean
DROP_FPS = 30.0  # frame-drop cases: a 30 fps camera losing frames
# Metrics compared with the truth (step by step, each clip's median difference).
METRICS = (
    "overstride_ratio",
    "trunk_lean_deg",
    "contact_time_ms",
    "duty_factor",
    "shank_angle_deg",
    "foot_angle_deg",
    "vertical_oscillation_ratio",
    "knee_lift_deg",
    "heel_recovery_ratio",
)
# The goals on fresh seeds.
GOALS = {
    "steps_found_pct": (">=", 95.0),
    "spurious_pct": ("<", 2.0),
    "median_contact_error_frames": ("<=", 1.0),
    "cadence_error_spm": ("<=", 1.0),
    "overstride_ratio_error": ("<=", 0.05),
    "trunk_lean_deg_error": ("<=", 3.0),
}
END_MARGIN_S = 0.25  # truth contacts this close to the clip's end may not be reported yet


@dataclass(frozen=True)
class Variant:
    """One runner of the benchmark."""

    seed: int
    fault: Optional[str]  # a FAULTS key, None: clean
    drop_pct: float = 0.0
    seconds: float = 20.0

    @property
    def spec(self) -> str:
        keys = [f"vary={self.seed}", f"seed={self.seed}", f"seconds={self.seconds:g}"]
        if self.fault is not None:
            keys.append(FAULTS[self.fault][0])
        if self.drop_pct > 0:
            keys.append(f"fps={DROP_FPS:g}")
        return "synthetic:?" + "&".join(keys)

    @property
    def name(self) -> str:
        drop = f" drop {self.drop_pct:g}%" if self.drop_pct else ""
        return f"vary={self.seed} {self.fault or 'clean'}{drop}"


def plan_variants(
    seeds: Sequence[int], seconds: float, drops: Sequence[float] = ()
) -> list[Variant]:
    """Each seed's runner (its fault drawn from the seed), then again at 30 fps per drop rate."""
    variants = []
    for seed in seeds:
        rng = np.random.default_rng([seed, 23])
        fault = None if rng.random() < CLEAN_SHARE else sorted(FAULTS)[rng.integers(len(FAULTS))]
        variants.append(Variant(seed, fault, 0.0, seconds))
        variants.extend(Variant(seed, fault, drop, seconds) for drop in drops if drop > 0)
    return variants


def run_variant(variant: Variant, settings: Settings) -> dict[str, Any]:
    """Render, track, measure and coach one variant, then score it against its truth."""
    from coachd.capture.synthetic import SyntheticSource, parse_spec
    from coachd.commands.analyze import Analysis, analysis_chain
    from coachd.pose.tracker import create_tracker

    params = parse_spec(variant.spec)
    source = SyntheticSource(params)
    tracker = create_tracker(settings.pose)
    measured = Analysis(source=variant.spec, fps=params.fps)
    chain = analysis_chain(settings, params.fps)
    chain.add_listener(measured)
    keep = np.random.default_rng([variant.seed, 29]).random(source.frame_count or 0)
    try:
        for frame in source:
            if keep[frame.seq] < variant.drop_pct / 100.0:
                continue
            chain.feed(tracker.track(frame))
        if measured.updates:
            chain.finish(measured.updates[-1].t)
    finally:
        tracker.close()
        source.close()
    truth = simulate_truth(params)
    return score(variant, params.fps, params.cadence, truth.events, truth.steps, measured)


def _match_contacts(
    truth: Sequence[GaitEvent], ours: Sequence[GaitEvent], tolerance_s: float
) -> list[tuple[GaitEvent, GaitEvent]]:
    """Truth and measured contacts paired nearest first, each used once (either foot)."""
    pairs = sorted(
        (abs(o.t - t.t), i, j)
        for i, t in enumerate(truth)
        for j, o in enumerate(ours)
        if abs(o.t - t.t) <= tolerance_s
    )
    used_t: set[int] = set()
    used_o: set[int] = set()
    matched = []
    for _, i, j in pairs:
        if i in used_t or j in used_o:
            continue
        used_t.add(i)
        used_o.add(j)
        matched.append((truth[i], ours[j]))
    return sorted(matched, key=lambda pair: pair[0].t)


def _metric_errors(
    truth_contacts: Sequence[GaitEvent],
    truth_steps: Sequence[Stride],
    ours: Sequence[Stride],
    tolerance_s: float,
) -> dict[str, float]:
    """Each metric's median over our steps minus the truth's over the same steps; cadence
    against the truth's contact rate (its per-step values are whole frames apart)."""
    errors: dict[str, float] = {}
    rate = [s.metrics["cadence_spm"] for s in ours if "cadence_spm" in s.metrics]
    if len(rate) >= 3 and len(truth_contacts) >= 2:
        first, last = truth_contacts[0].t, truth_contacts[-1].t
        errors["cadence_spm"] = float(np.median(rate)) - 60.0 * (len(truth_contacts) - 1) / (
            last - first
        )
    for key in METRICS:
        mine, theirs = [], []
        for stride in ours:
            near = [s for s in truth_steps if abs(s.t - stride.t) <= tolerance_s]
            if near and key in stride.metrics and key in near[0].metrics:
                mine.append(stride.metrics[key])
                theirs.append(near[0].metrics[key])
        if len(mine) >= 3:
            errors[key] = float(np.median(mine) - np.median(theirs))
    return errors


def score(
    variant: Variant,
    fps: float,
    cadence: float,
    truth_events: Sequence[GaitEvent],
    truth_steps: Sequence[Stride],
    measured: Analysis,
) -> dict[str, Any]:
    """One clip's result: steps found, missed and spurious, timing, metric errors, cues."""
    last = measured.updates[-1] if measured.updates else None
    end = variant.seconds - END_MARGIN_S
    tolerance = 0.4 * 60.0 / cadence
    # Contacts either side of the cut pair up as anywhere else: one just before it may be
    # measured just after it, or the other way round.
    near_end = end + tolerance
    truth_all = [e for e in truth_events if e.kind == "contact" and e.t <= near_end]
    ours = [e for e in measured.events if e.kind == "contact" and e.t <= near_end]
    all_pairs = _match_contacts(truth_all, ours, tolerance)
    truth = [e for e in truth_all if e.t <= end]
    pairs = [(t, o) for t, o in all_pairs if t.t <= end]
    matched = {id(o) for _, o in all_pairs}
    spurious = sum(1 for o in ours if o.t <= end and id(o) not in matched)
    timing = [(o.t - t.t) * fps for t, o in pairs]
    corrections = sorted({c.cue_id for c in measured.cues if c.kind == "correction"})
    expected = FAULTS[variant.fault][1] if variant.fault else None
    return {
        "name": variant.name,
        "spec": variant.spec,
        "fps": fps,
        "fault": variant.fault,
        "drop_pct": variant.drop_pct,
        "frames_tracked": measured.frames,
        "truth_steps": len(truth),
        "found": len(pairs),
        "missed": len(truth) - len(pairs),
        "spurious": spurious,
        "side_swapped": sum(t.side != o.side for t, o in pairs),
        "contact_errors_frames": [round(e, 2) for e in timing],
        "median_contact_error_frames": float(np.median(np.abs(timing))) if timing else None,
        "measured_steps": len(measured.strides),
        "errors": _metric_errors(truth, truth_steps, measured.strides, tolerance),
        "label_repairs": last.label_repairs if last else 0,
        "steps_rejected": last.steps_rejected if last else 0,
        "corrections": corrections,
        "fault_cued": None if expected is None else expected in corrections,
        "clean_corrected": None if expected is not None else bool(corrections),
    }


def _meets(value: Optional[float], goal: tuple[str, float]) -> Optional[bool]:
    if value is None or math.isnan(value):
        return None
    op, bar = goal
    return {">=": value >= bar, "<": value < bar, "<=": value <= bar}[op]


def summarise(clips: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Totals over all clips and each goal met or not."""
    truth = sum(c["truth_steps"] for c in clips)
    found = sum(c["found"] for c in clips)
    spurious = sum(c["spurious"] for c in clips)
    measured = found + spurious
    timing = [abs(e) for c in clips for e in c["contact_errors_frames"]]
    per_metric: dict[str, float] = {}
    for key in ("cadence_spm", *METRICS):
        values = [abs(c["errors"][key]) for c in clips if key in c["errors"]]
        if values:
            per_metric[key] = float(np.max(values))
    faulty = [c for c in clips if c["fault"] is not None]
    clean = [c for c in clips if c["fault"] is None]
    overall: dict[str, Any] = {
        "clips": len(clips),
        "truth_steps": truth,
        "found": found,
        "missed": truth - found,
        "spurious": spurious,
        "steps_found_pct": 100.0 * found / truth if truth else math.nan,
        "spurious_pct": 100.0 * spurious / measured if measured else math.nan,
        "median_contact_error_frames": float(np.median(timing)) if timing else math.nan,
        "worst_metric_errors": per_metric,
        "faults_cued": f"{sum(bool(c['fault_cued']) for c in faulty)}/{len(faulty)}",
        "clean_corrected": f"{sum(bool(c['clean_corrected']) for c in clean)}/{len(clean)}",
        "label_repairs": sum(c["label_repairs"] for c in clips),
        "steps_rejected": sum(c["steps_rejected"] for c in clips),
        "side_swapped": sum(c["side_swapped"] for c in clips),
    }
    against_goals = {
        "steps_found_pct": overall["steps_found_pct"],
        "spurious_pct": overall["spurious_pct"],
        "median_contact_error_frames": overall["median_contact_error_frames"],
        "cadence_error_spm": per_metric.get("cadence_spm"),
        "overstride_ratio_error": per_metric.get("overstride_ratio"),
        "trunk_lean_deg_error": per_metric.get("trunk_lean_deg"),
    }
    overall["goals"] = {
        key: {
            "value": against_goals[key],
            "goal": f"{op} {bar:g}",
            "met": _meets(against_goals[key], (op, bar)),
        }
        for key, (op, bar) in GOALS.items()
    }
    return overall


def bench_gait(
    variants: Sequence[Variant],
    settings: Settings,
    progress: Optional[Callable[[int, str], None]] = None,
) -> dict[str, Any]:
    """Every variant run and scored, and the totals."""
    clips: list[dict[str, Any]] = []
    for n, variant in enumerate(variants):
        if progress is not None:
            progress(n, variant.name)
        clips.append(run_variant(variant, settings))
    return {"clips": clips, "overall": summarise(clips)}
