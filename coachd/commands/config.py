"""`coachd config show`: the effective settings and where each came from."""

from __future__ import annotations

import argparse
import json
from typing import Any

from coachd.commands import Command, settings_from_args
from coachd.redact import redact
from coachd.settings import SECTIONS, LoadedSettings, Settings, allowed_values


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["show"], help="show: the effective settings")
    parser.add_argument(
        "--documented",
        action="store_true",
        help="print every field commented with its default and what it accepts "
        "(the form of config/coachd.toml)",
    )


def toml_value(value: Any) -> str:
    if value is None:
        return '""  # unset'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(redact(str(value)))


def render_effective(loaded: LoadedSettings) -> str:
    lines = []
    for section in SECTIONS:
        lines.append(f"[{section}]")
        values = getattr(loaded.settings, section).model_dump()
        for key, value in values.items():
            origin = loaded.origin[f"{section}.{key}"]
            text = f"{key} = {toml_value(value)}" if value is not None else f"# {key} is unset"
            lines.append(f"{text.ljust(44)}  # {origin}")
        lines.append("")
    return "\n".join(lines)


def render_documented() -> str:
    """Every field with its default and what it accepts; uncomment a line to change it."""
    defaults = Settings()
    lines = [
        "# coachd settings. Every field is shown commented out with its default; uncomment",
        "# to change it. Loaded from --config PATH, else /etc/coachd/coachd.toml. The",
        "# environment (COACHD_<SECTION>__<FIELD>) and command-line flags override this file.",
        "",
    ]
    for section in SECTIONS:
        lines.append(f"[{section}]")
        for key, value in getattr(defaults, section).model_dump().items():
            lines.append(f"# {key}: {allowed_values(f'{section}.{key}')}")
            lines.append(f"# {key} = {toml_value(value)}" if value is not None else f"# {key} =")
        lines.append("")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    if args.documented:
        print(render_documented(), end="")
        return 0
    loaded = settings_from_args(args)
    source = loaded.config_file or "none (defaults; /etc/coachd/coachd.toml is absent)"
    print(f"# config file: {source}")
    print(render_effective(loaded), end="")
    return 0


COMMAND = Command("config", "show the effective settings", _add_arguments, _run, 80)
