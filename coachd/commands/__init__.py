"""Subcommands: each module defines COMMAND; coachd.cli finds them by itself."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from coachd.errors import UsageError
from coachd.settings import LoadedSettings, load_settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    order: int = 50


def settings_from_args(
    args: argparse.Namespace, flags: Optional[Mapping[str, Any]] = None
) -> LoadedSettings:
    """Settings for a command: --config, the environment, --set, then the command's own flags.

    `flags` maps "section.key" to a flag's value; None means the flag was not given.
    """
    overrides: dict[str, dict[str, Any]] = {}
    for item in getattr(args, "set", []) or []:
        key, sep, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise UsageError(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. camera.fps=60")
        overrides.setdefault(section, {})[name] = parse_value(raw.strip())
    for key, value in (flags or {}).items():
        if value is not None:
            section, _, name = key.partition(".")
            overrides.setdefault(section, {})[name] = value
    config = getattr(args, "config", None)
    return load_settings(Path(config) if config else None, overrides)


def parse_value(raw: str) -> Any:
    """A --set value: a TOML value when it parses as one (60, true, [1, 2]), else plain text."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def print_json(data: Any) -> None:
    """A listing as JSON on stdout, for scripts (jq, a kiosk's monitoring)."""
    print(json.dumps(data, indent=1, default=str))
