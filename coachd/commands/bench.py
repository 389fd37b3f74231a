"""`coachd bench pose`: both pose backends on the same decoded frames, timed and compared.
`coachd bench live`: the live pipeline on paced sources (coachd.commands.bench_live).
`coachd bench gait`: measuring accuracy on varied synthetic runners (coachd.commands.bench_gait)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from coachd.commands import Command, bench_gait, settings_from_args
from coachd.errors import SourceError, UsageError
from coachd.messages import Frame
from coachd.redact import redact
from coachd.settings import Settings

DEFAULT_FRAMES = 300
WARMUP_FRAMES = 5  # model loading and first-run allocation, left out of the timings
REFERENCE = "mediapipe"
CANDIDATE = "litert"
AGREEMENT_BAR_PCT = 2.0
SPEED_BAR = 0.6


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", choices=["pose", "live", "gait"], help="what to benchmark")
    parser.add_argument(
        "--source",
        action="append",
        help="video file, camera, URL or synthetic:?... (default: camera.source; live: "
        "repeatable, default the synthetic runner)",
    )
    parser.add_argument(
        "--fps",
        type=float,
        nargs="+",
        default=[30.0, 60.0],
        help="live: rates for the synthetic runner (default 30 60)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=20.0,
        help="live, gait: seconds of each synthetic runner (default 20)",
    )
    parser.add_argument(
        "--layout",
        nargs="+",
        choices=["serial", "single", "parallel", "auto"],
        default=["serial", "auto"],
        help="live: pose layouts, each run in turn (serial: one interpreter on pose.threads "
        "threads, as before frame-parallel pose; single: one single-threaded interpreter; "
        "parallel: two taking alternate frames; auto: chosen from the cores and the rate)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="live: rounds of the layouts in turn (ABAB), for the spread on a busy machine",
    )
    parser.add_argument(
        "--frames",
        type=int,
        default=DEFAULT_FRAMES,
        help=f"frames to decode and run (default {DEFAULT_FRAMES}, fewer if the source ends)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    bench_gait.add_arguments(parser)


def decode_frames(spec: str, settings: Settings, count: int) -> list[Frame]:
    """Up to `count` frames from the source, decoded once into memory."""
    from coachd.capture.open import open_source

    frames: list[Frame] = []
    with open_source(spec, settings.camera, realtime=False) as source:
        for frame in source:
            frames.append(frame)
            if len(frames) >= count:
                break
    if not frames:
        raise SourceError(f"source {spec!r}: no frames could be read")
    return frames


def _progress(label: str) -> Any:
    """Progress on stderr: one rewritten line on a terminal, plain lines otherwise."""
    terminal = sys.stderr.isatty()

    def report(done: int, total: int) -> None:
        if done == total or done % 25 == 0:
            if terminal:
                end = "\n" if done == total else ""
                print(f"\r{label}: {done}/{total}", end=end, file=sys.stderr, flush=True)
            else:
                print(f"{label}: {done}/{total}", file=sys.stderr, flush=True)

    return report


def bench_pose(frames: list[Frame], settings: Settings) -> dict[str, Any]:
    """Both backends, raw (no smoothing on either), interleaved frame by frame.

    Without mediapipe (the extra coachd[stock]) only LiteRT is timed and nothing compared.
    """
    from coachd.pose.compare import agreement, run_interleaved
    from coachd.pose.mediapipe_backend import stock_missing
    from coachd.pose.tracker import create_tracker

    missing = stock_missing()
    names = [CANDIDATE] if missing else [REFERENCE, CANDIDATE]
    raw = settings.pose.model_copy(update={"smoothing": False})
    trackers = [create_tracker(raw, name) for name in names]
    try:
        runs = run_interleaved(frames, trackers, _progress("pose"))
    finally:
        for tracker in trackers:
            tracker.close()
    warmup = WARMUP_FRAMES if len(frames) > 2 * WARMUP_FRAMES else 0
    summaries = {run.name: run.summary(warmup) for run in runs}
    width, height = frames[0].size
    report: dict[str, Any] = {
        "frames": len(frames),
        "timed_frames": len(frames) - warmup,
        "image_size": [width, height],
        "threads": settings.pose.threads,
        "smoothing": "off for both backends" if not missing else "off",
        "backends": summaries,
    }
    if missing:
        report["stock_comparison"] = f"skipped: {missing}"
        return report
    ratio = summaries[CANDIDATE]["median_ms"] / max(summaries[REFERENCE]["median_ms"], 1e-9)
    agree = agreement(runs[0], runs[1])
    report.update(
        ratio_median=round(ratio, 3),
        agreement=agree,
        meets_speed_bar=ratio <= SPEED_BAR,
        meets_agreement_bar=bool(agree["median_pct_torso"] <= AGREEMENT_BAR_PCT),
    )
    return report


def _table(report: dict[str, Any]) -> str:
    width, height = report["image_size"]
    lines = [
        f"pose bench: {report['timed_frames']} timed frames of {width}x{height} "
        f"(+{report['frames'] - report['timed_frames']} warm-up), {report['threads']} threads, "
        f"smoothing {report['smoothing']}",
        f"{'backend':<10} {'median ms':>10} {'p95 ms':>8} {'fps':>7} {'cpu use':>8} "
        f"{'cpu ms':>7} {'found':>6}",
    ]
    for name, s in report["backends"].items():
        lines.append(
            f"{name:<10} {s['median_ms']:>10.2f} {s['p95_ms']:>8.2f} {s['fps']:>7.1f} "
            f"{s['cpu_use']:>8.2f} {s['cpu_ms_median']:>7.2f} {s['frames_with_pose']:>6d}"
        )
    if "stock_comparison" in report:
        lines.append(f"stock comparison {report['stock_comparison']}")
        return "\n".join(lines)
    agree = report["agreement"]
    median = agree["median_pct_torso"]
    lines.append(
        f"{CANDIDATE}/{REFERENCE} median time: {report['ratio_median']:.2f} "
        f"(bar {SPEED_BAR}: {'met' if report['meets_speed_bar'] else 'NOT met'})"
    )
    lines.append(
        "landmark agreement: "
        + (
            "no frame tracked by both"
            if math.isnan(median)
            else f"median {median:.2f}% of torso, p95 {agree['p95_pct_torso']:.2f}% "
            f"over {agree['frames']} frames x 25 body landmarks "
            f"(bar {AGREEMENT_BAR_PCT}%: {'met' if report['meets_agreement_bar'] else 'NOT met'})"
        )
    )
    return "\n".join(lines)


def _run_live(args: argparse.Namespace) -> int:
    from coachd.commands.bench_live import bench_live, cpu_ratios, table

    if args.seconds <= 0 or any(rate <= 0 or rate > 240 for rate in args.fps):
        raise UsageError("--seconds must be above 0 and each --fps in 0 < fps <= 240")
    if args.repeat < 1:
        raise UsageError(f"--repeat {args.repeat}: must be at least 1")
    settings = settings_from_args(args, {}).settings
    results = bench_live(
        args.source or ["synthetic:"], args.fps, args.seconds, args.layout, settings, args.repeat
    )
    if args.json:
        print(json.dumps({"runs": results, "cpu_ratios": cpu_ratios(results)}, indent=2))
    else:
        print(table(results))
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.stage == "live":
        return _run_live(args)
    if args.stage == "gait":
        return bench_gait.run(args)
    if args.frames < 1:
        raise UsageError(f"--frames {args.frames}: must be at least 1")
    source = args.source[-1] if args.source else None
    settings = settings_from_args(args, {"camera.source": source}).settings
    shown = redact(settings.camera.source)
    print(f"decoding up to {args.frames} frames from {shown}", file=sys.stderr)
    frames = decode_frames(settings.camera.source, settings, args.frames)
    report = bench_pose(frames, settings)
    report["source"] = shown
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_table(report))
    return 0


COMMAND = Command(
    "bench",
    "measure a stage (pose: both backends' speed; live: the pipeline on paced sources; "
    "gait: accuracy on varied synthetic runners)",
    _add_arguments,
    _run,
    70,
)
