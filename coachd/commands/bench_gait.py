"""`coachd bench gait`: the field benchmark (coachd.bench.gait) from the command line.

Fresh seeds by default (printed, so a run can be repeated with --seeds); a tqdm bar on a
terminal only; a table or --json.
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import sys
from typing import Any, Optional

from coachd.commands import settings_from_args
from coachd.errors import UsageError

DEFAULT_COUNT = 6
DEFAULT_DROPS = (25.0, 50.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="gait: the vary= seeds to run (default: --count fresh random seeds)",
    )
    parser.add_argument(
        "--count",
        type=int,
        default=DEFAULT_COUNT,
        help=f"gait: how many fresh seeds (default {DEFAULT_COUNT})",
    )
    parser.add_argument(
        "--drop",
        type=float,
        nargs="*",
        default=list(DEFAULT_DROPS),
        help="gait: each runner again at 30 fps with this %% of frames dropped at random "
        "(default 25 50; none: --drop)",
    )


def _seeds(args: argparse.Namespace) -> list[int]:
    if args.seeds:
        if any(seed < 0 or seed >= 2**31 for seed in args.seeds):
            raise UsageError("--seeds: each seed must be a whole number from 0 to 2147483647")
        return list(args.seeds)
    if not 1 <= args.count <= 1000:
        raise UsageError(f"--count {args.count}: must be from 1 to 1000")
    return [secrets.randbelow(2**31) for _ in range(args.count)]


def run(args: argparse.Namespace) -> int:
    from coachd.bench.gait import bench_gait, plan_variants

    if not 2.0 <= args.seconds <= 600.0:
        raise UsageError(f"--seconds {args.seconds:g}: gait clips must be 2 to 600 s long")
    if any(not 0.0 <= drop < 100.0 for drop in args.drop):
        raise UsageError("--drop: each share of frames dropped must be from 0 to below 100")
    seeds = _seeds(args)
    print(f"seeds: {' '.join(str(s) for s in seeds)}", file=sys.stderr)
    settings = settings_from_args(args, {}).settings
    variants = plan_variants(seeds, args.seconds, args.drop)
    bar = _bar(len(variants))
    try:
        report = bench_gait(variants, settings, bar.step if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    report["seeds"] = seeds
    print(json.dumps(report, indent=1) if args.json else table(report))
    return 0


class _Bar:
    """A tqdm bar over the clips, shown on a terminal only."""

    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc="bench gait", unit="clip", file=sys.stderr)

    def step(self, done: int, name: str) -> None:
        self._bar.set_postfix_str(name)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        self._bar.update(self._bar.total - self._bar.n)
        self._bar.close()


def _bar(total: int) -> Optional[_Bar]:
    return _Bar(total) if sys.stderr.isatty() else None


def _number(value: Optional[float], digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def table(report: dict[str, Any]) -> str:
    """Per clip, then overall with each goal."""
    lines = [
        f"{'clip':<34} {'fps':>4} {'steps':>5} {'found':>5} {'miss':>4} {'spur':>4} "
        f"{'swap':>4} {'t err':>5} {'cad':>6} {'over':>6} {'lean':>6} {'ct ms':>6} "
        f"{'fix':>4} cues"
    ]
    for c in report["clips"]:
        err = c["errors"]
        cued = {True: "ok", False: "NO", None: "-"}[c["fault_cued"]]
        if c["clean_corrected"]:
            cued = "BAD"
        lines.append(
            f"{c['name']:<34} {c['fps']:>4g} {c['truth_steps']:>5} {c['found']:>5} "
            f"{c['missed']:>4} {c['spurious']:>4} {c['side_swapped']:>4} "
            f"{_number(c['median_contact_error_frames'], 1):>5} "
            f"{_number(err.get('cadence_spm'), 1):>6} {_number(err.get('overstride_ratio')):>6} "
            f"{_number(err.get('trunk_lean_deg'), 1):>6} "
            f"{_number(err.get('contact_time_ms'), 0):>6} {c['label_repairs']:>4} {cued} "
            + ",".join(c["corrections"])
        )
    o = report["overall"]
    lines.append(
        f"overall: {o['clips']} clips, {o['truth_steps']} steps: {o['found']} found, "
        f"{o['missed']} missed, {o['spurious']} spurious, {o['side_swapped']} on the wrong "
        f"foot; faults cued {o['faults_cued']}, clean runners corrected {o['clean_corrected']}; "
        f"label repairs {o['label_repairs']}"
    )
    for key, goal in o["goals"].items():
        met = {True: "met", False: "NOT met", None: "no data"}[goal["met"]]
        lines.append(f"  {key:<30} {_number(goal['value']):>8}  goal {goal['goal']:<7} {met}")
    worst = ", ".join(f"{k} {v:.3g}" for k, v in o["worst_metric_errors"].items())
    lines.append(f"  worst |median error| per metric over clips: {worst}")
    return "\n".join(lines)
