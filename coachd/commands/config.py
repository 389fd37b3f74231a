"""`coachd config show`: the effective settings and where each came from."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Optional

from coachd.commands import Command, settings_from_args
from coachd.redact import MASK, redact
from coachd.service.store import DB_NAME, state_directory
from coachd.settings import (
    CONFIG_ENV,
    SECTIONS,
    LoadedSettings,
    Settings,
    allowed_values,
    config_file_candidates,
)


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


# Shown as set, never with their value.
SECRET_SETTINGS = ("runners.key",)


def render_effective(loaded: LoadedSettings, resolved: Optional[dict[str, str]] = None) -> str:
    """Every setting with its origin; `resolved` adds what an empty path setting stands for."""
    lines = []
    for section in SECTIONS:
        lines.append(f"[{section}]")
        values = getattr(loaded.settings, section).model_dump()
        for key, value in values.items():
            origin = loaded.origin[f"{section}.{key}"]
            if f"{section}.{key}" in SECRET_SETTINGS and value:
                value = MASK
            if value == "" and f"{section}.{key}" in (resolved or {}):
                origin += f"; resolves to {(resolved or {})[f'{section}.{key}']}"
            text = f"{key} = {toml_value(value)}" if value is not None else f"# {key} is unset"
            lines.append(f"{text.ljust(44)}  # {origin}")
        lines.append("")
    return "\n".join(lines)


def render_documented() -> str:
    """Every field with its default and what it accepts; uncomment a line to change it."""
    defaults = Settings()
    lines = [
        "# coachd settings. Every field is shown commented out with its default; uncomment",
        "# to change it. Read from --config PATH (or $COACHD_CONFIG), else from",
        "# /etc/coachd/coachd.toml and then ~/.config/coachd/coachd.toml. The environment",
        "# (COACHD_<SECTION>__<FIELD>) and command-line flags override the files.",
        "",
    ]
    for section in SECTIONS:
        lines.append(f"[{section}]")
        for key, value in getattr(defaults, section).model_dump().items():
            lines.append(f"# {key}: {allowed_values(f'{section}.{key}')}")
            lines.append(f"# {key} = {toml_value(value)}" if value is not None else f"# {key} =")
        lines.append("")
    return "\n".join(lines)


def render_sources(loaded: LoadedSettings, explicit: bool, state: Path) -> str:
    """Which files were read and where the state lives, as TOML comments."""
    lines = ["# settings, lowest first: defaults < config files < environment < --set and flags"]
    if explicit:
        lines.append(f"# config file: {loaded.config_files[0]} (--config or {CONFIG_ENV})")
    for path in [] if explicit else config_file_candidates():
        lines.append(
            f"# config file: {path} ({'read' if path in loaded.config_files else 'absent'})"
        )
    lines.append(f"# state directory: {state} (service.state_dir)")
    lines.append(f"# sessions database: {state / DB_NAME}")
    return "\n".join(lines) + "\n"


def _run(args: argparse.Namespace) -> int:
    if args.documented:
        print(render_documented(), end="")
        return 0
    loaded = settings_from_args(args)
    explicit = bool(args.config or os.environ.get(CONFIG_ENV))
    state = state_directory(loaded.settings.service, reading=True)
    print(render_sources(loaded, explicit, state), end="")
    print(render_effective(loaded, {"service.state_dir": str(state)}), end="")
    return 0


COMMAND = Command("config", "show the effective settings", _add_arguments, _run, 80)
