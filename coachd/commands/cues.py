"""`coachd cues list` and `coachd cues validate PATH`: see and check the coaching rules."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from coachd.commands import Command, settings_from_args
from coachd.errors import EXIT_CONFIG, UsageError


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=["list", "validate"],
        help="list: the cues in force (engine.packs, enable, disable); validate: check pack files",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="pack files to validate")


def _list(args: argparse.Namespace) -> int:
    from coachd.coach.pack import load_packs

    pack = load_packs(settings_from_args(args).settings.engine)
    print("# packs: " + ", ".join(str(p) for p in pack.sources))
    metric_width = max(len(",".join(r.metrics)) for r in pack.rules)
    print(f"{'id':<17} {'on':<3} {'prio':>4}  {'metric':<{metric_width}}  {'views':<31} thresholds")
    for rule in pack.rules:
        views = ",".join(rule.views)
        joiner = " or " if rule.match == "any" else " and "
        thresholds = joiner.join(c.describe() for c in rule.conditions)
        if rule.gate.describe():
            thresholds += f" [only when {rule.gate.describe()}]"
        thresholds += f" [{rule.persistence_k} of {rule.persistence_n} strides]"
        on = "yes" if rule.enabled else "no"
        metrics = ",".join(rule.metrics)
        print(
            f"{rule.id:<17} {on:<3} {rule.priority:>4}  {metrics:<{metric_width}}  "
            f"{views:<31} {thresholds}"
        )
    return 0


def _validate(paths: list[str]) -> int:
    from coachd.coach.pack import validate_file

    if not paths:
        raise UsageError("cues validate: name one or more pack files, e.g. cues/default.toml")
    problems: list[str] = []
    for name in paths:
        problems += validate_file(Path(name))
    for line in problems:
        print(f"coachd: {line}", file=sys.stderr)
    if problems:
        return EXIT_CONFIG
    print(f"{len(paths)} pack file{'s' if len(paths) > 1 else ''} valid: {', '.join(paths)}")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.action == "list":
        if args.paths:
            raise UsageError("cues list takes no PATH; use --set engine.packs=[...] instead")
        return _list(args)
    return _validate(args.paths)


COMMAND = Command(
    "cues", "list the coaching cues in force, or validate pack files", _add_arguments, _run, 60
)
