"""`coachd bench live`: the live pipeline on a source paced as a camera, per pose layout.

Each run opens the source paced to real time, tracks it through the same LivePipeline as
`coachd run` with the gait stage behind it, and reports what a runner would get: frames
tracked and dropped, glass-to-landmarks, CPU per tracked frame (whole process, and without
the capture thread: decoding or drawing the synthetic runner is not the pipeline's), the gait
stage's share of it, and the steps the gait stage found. `repeat` runs the layouts in turn
again (ABAB), as the machine's other load changes over minutes.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any, Optional

from coachd.capture import FrameSource
from coachd.capture.open import SYNTHETIC_PREFIX, open_source
from coachd.errors import SourceError
from coachd.messages import Frame, TrackedFrame
from coachd.redact import redact
from coachd.settings import Settings

# Pose settings of each layout. serial: the tracker before frame-parallel pose (one
# interpreter on pose.threads threads); single: one single-threaded interpreter; parallel:
# two single-threaded interpreters taking alternate frames; auto: as `coachd run` chooses.
LAYOUTS: dict[str, dict[str, int]] = {
    "serial": {"workers": 1},
    "single": {"workers": 1, "threads": 1},
    "parallel": {"workers": 2},
    "auto": {"workers": 0},
}


def synthetic_at(spec: str, fps: float, seconds: float) -> str:
    """The synthetic runner's spec at `fps` for `seconds` (other options kept)."""
    options = spec[len(SYNTHETIC_PREFIX) :].lstrip("?")
    kept = [o for o in options.split("&") if o and not o.startswith(("fps=", "seconds="))]
    return SYNTHETIC_PREFIX + "?" + "&".join([*kept, f"fps={fps:g}", f"seconds={seconds:g}"])


def expected_steps(source: FrameSource) -> Optional[float]:
    """Steps the synthetic runner takes (its cadence over the run); None for other sources."""
    params = getattr(source, "params", None)
    if params is None or params.seconds is None:
        return None
    return float(params.cadence * params.seconds / 60.0)


def run_live(spec: str, settings: Settings, layout: str) -> dict[str, Any]:
    """One paced run of `spec` through the live pipeline with the pose `layout`."""
    from coachd.gait import GaitAnalyzer
    from coachd.pipeline import LivePipeline
    from coachd.pose import create_tracker
    from coachd.pose.parallel import available_cores, choose_layout

    pose = settings.pose.model_copy(update=LAYOUTS[layout])
    source = open_source(spec, settings.camera, realtime=True)
    fps = source.nominal_fps
    tracker = create_tracker(pose, fps=fps)
    chosen = choose_layout(available_cores(), fps, pose.workers, pose.threads)
    gaits = [GaitAnalyzer(settings.gait, fps=fps)]
    contacts = 0
    gait_cpu_s = 0.0

    def consume(frame: Frame, tracked: TrackedFrame) -> None:
        nonlocal contacts, gait_cpu_s
        started = time.thread_time()
        update = gaits[-1].update(tracked)
        gait_cpu_s += time.thread_time() - started
        contacts += sum(event.kind == "contact" for event in update.events)

    def reopen() -> FrameSource:
        raise SourceError(f"{redact(spec)} ended")

    truth_steps = expected_steps(source)
    pipeline = LivePipeline(
        source,
        reopen,
        tracker,
        consume,
        on_rate=lambda rate: gaits.append(GaitAnalyzer(settings.gait, fps=rate)),
    )
    cpu0, wall0 = time.process_time(), time.monotonic()
    pipeline.start()
    pipeline.ended.wait(timeout=24 * 3600)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    snapshot = pipeline.snapshot()
    pipeline.stop()
    tracker.close()
    tracked = max(snapshot.frames_tracked, 1)
    return {
        "source": redact(spec),
        "fps_asked": round(fps, 2),
        "layout": str(chosen),
        "pose_workers_at_end": snapshot.pose_workers,
        "frames_captured": snapshot.frames_captured,
        "frames_tracked": snapshot.frames_tracked,
        "tracked_fps": round(snapshot.frames_tracked / wall, 1),
        "dropped_pct": round(100.0 * snapshot.dropped_fraction, 1),
        "skipped_pct": round(100.0 * snapshot.frames_skipped / max(snapshot.frames_captured, 1), 1),
        "rate_divisor": snapshot.rate_divisor,
        "latency_ms_p50": round(snapshot.latency_ms_p50, 1),
        "latency_ms_p95": round(snapshot.latency_ms_p95, 1),
        "pose_ms_p50": round(snapshot.pose_ms_p50, 1),
        "cpu_ms_per_frame": round(1000.0 * cpu / tracked, 2),
        "cpu_ms_per_frame_without_capture": round(
            1000.0 * (cpu - pipeline.capture_cpu_s) / tracked, 2
        ),
        "capture_ms_per_frame": round(snapshot.capture_ms_p50, 2),
        "gait_ms_per_frame": round(1000.0 * gait_cpu_s / tracked, 2),
        "steps_found": contacts,
        "steps_expected": None if truth_steps is None else round(truth_steps, 1),
    }


def bench_live(
    specs: list[str],
    rates: list[float],
    seconds: float,
    layouts: list[str],
    settings: Settings,
    repeat: int = 1,
) -> list[dict[str, Any]]:
    """Every source (the synthetic runner at each rate) with every layout, layouts alternating
    (`repeat` rounds of them)."""
    runs: list[str] = []
    for spec in specs:
        if spec.startswith(SYNTHETIC_PREFIX):
            runs.extend(synthetic_at(spec, rate, seconds) for rate in rates)
        else:
            runs.append(spec)
    results = []
    for spec in runs:
        for round_ in range(1, repeat + 1):
            for layout in layouts:
                print(
                    f"live: {redact(spec)} with the {layout} layout (round {round_})",
                    file=sys.stderr,
                    flush=True,
                )
                run = run_live(spec, settings, layout)
                results.append({"layout_asked": layout, "round": round_, **run})
    return results


def cpu_ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CPU per tracked frame of each layout against the first one's in the same round:
    median and range over the rounds, whole process and without the capture thread."""
    summaries = []
    for source in dict.fromkeys(r["source"] for r in results):
        runs = [r for r in results if r["source"] == source]
        base_layout = runs[0]["layout_asked"]
        base = {r["round"]: r for r in runs if r["layout_asked"] == base_layout}
        for layout in dict.fromkeys(r["layout_asked"] for r in runs):
            if layout == base_layout:
                continue
            pairs = [(r, base[r["round"]]) for r in runs if r["layout_asked"] == layout]
            summary: dict[str, Any] = {"source": source, "layout": layout, "against": base_layout}
            for key in ("cpu_ms_per_frame", "cpu_ms_per_frame_without_capture"):
                ratios = [r[key] / b[key] for r, b in pairs if b[key] > 0]
                summary[key] = {
                    "median": round(statistics.median(ratios), 3),
                    "min": round(min(ratios), 3),
                    "max": round(max(ratios), 3),
                }
            summaries.append(summary)
    return summaries


def table(results: list[dict[str, Any]]) -> str:
    header = (
        f"{'source':<44} {'layout':<36} {'fps':>5} {'drop%':>6} {'skip%':>6} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'cpu ms':>7} {'-capt':>7} {'capt ms':>7} {'gait ms':>7} {'steps':>11}"
    )
    lines = [header]
    for r in results:
        layout = r["layout"]
        if r["pose_workers_at_end"] > 1 and layout.startswith("1 of"):
            layout += f", {r['pose_workers_at_end']} at end"
        steps = f"{r['steps_found']}" + (
            f"/{r['steps_expected']:.0f}" if r["steps_expected"] is not None else ""
        )
        lines.append(
            f"{r['source'][-44:]:<44} {layout:<36} {r['tracked_fps']:>5.1f} "
            f"{r['dropped_pct']:>6.1f} {r['skipped_pct']:>6.1f} {r['latency_ms_p50']:>7.1f} "
            f"{r['latency_ms_p95']:>7.1f} {r['cpu_ms_per_frame']:>7.2f} "
            f"{r['cpu_ms_per_frame_without_capture']:>7.2f} "
            f"{r['capture_ms_per_frame']:>7.2f} {r['gait_ms_per_frame']:>7.2f} {steps:>11}"
        )
    for s in cpu_ratios(results):
        whole, own = s["cpu_ms_per_frame"], s["cpu_ms_per_frame_without_capture"]
        lines.append(
            f"CPU per tracked frame, {s['layout']} against {s['against']}, {s['source']}: "
            f"{whole['median']:.3f}x ({whole['min']:.3f}-{whole['max']:.3f}); without the "
            f"capture thread {own['median']:.3f}x ({own['min']:.3f}-{own['max']:.3f})"
        )
    return "\n".join(lines)
