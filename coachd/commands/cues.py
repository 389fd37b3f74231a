"""`coachd cues list [--json]` and `coachd cues validate PATH`: see and check the coaching rules."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from coachd.commands import Command, add_json_argument, print_json, settings_from_args
from coachd.errors import EXIT_CONFIG, UsageError


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = (
        "coachd cues [options] list [--json]\n       coachd cues [options] validate PATH [PATH ...]"
    )
    parser.add_argument(
        "action",
        choices=["list", "validate"],
        help="list: the cues in force (engine.packs, enable, disable); validate: check pack files",
    )
    # default=[]: argparse would otherwise call PATH required, even for `list`.
    parser.add_argument("paths", nargs="*", default=[], metavar="PATH", help="validate: pack files")
    add_json_argument(parser)


def _list(args: argparse.Namespace) -> int:
    from coachd.coach.pack import CueRule, load_packs

    pack = load_packs(settings_from_args(args).settings.engine)

    def thresholds(rule: CueRule) -> str:
        joiner = " or " if rule.match == "any" else " and "
        return joiner.join(c.describe() for c in rule.conditions)

    if args.json:
        rules = [
            {
                "id": rule.id,
                "enabled": rule.enabled,
                "priority": rule.priority,
                "metrics": list(rule.metrics),
                "views": list(rule.views),
                "thresholds": thresholds(rule),
                "only_when": rule.gate.describe() or None,
                "persistence": [rule.persistence_k, rule.persistence_n],
            }
            for rule in pack.rules
        ]
        print_json({"packs": [str(p) for p in pack.sources], "cues": rules})
        return 0
    print("# packs: " + ", ".join(str(p) for p in pack.sources))
    metric_width = max(len(",".join(r.metrics)) for r in pack.rules)
    print(f"{'id':<17} {'on':<3} {'prio':>4}  {'metric':<{metric_width}}  {'views':<31} thresholds")
    for rule in pack.rules:
        views = ",".join(rule.views)
        text = thresholds(rule)
        if rule.gate.describe():
            text += f" [only when {rule.gate.describe()}]"
        text += f" [{rule.persistence_k} of {rule.persistence_n} strides]"
        on = "yes" if rule.enabled else "no"
        metrics = ",".join(rule.metrics)
        print(
            f"{rule.id:<17} {on:<3} {rule.priority:>4}  {metrics:<{metric_width}}  "
            f"{views:<31} {text}"
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
    if args.json:
        raise UsageError("--json goes with cues list; cues validate prints one line per problem")
    return _validate(args.paths)


COMMAND = Command(
    "cues", "list the coaching cues in force, or validate pack files", _add_arguments, _run, 60
)
