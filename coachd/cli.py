"""The `coachd` command line: one module per subcommand in coachd/commands/."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import traceback
from collections.abc import Sequence
from typing import Optional

from coachd import __version__, commands
from coachd.commands import Command
from coachd.errors import EXIT_FAILURE, CoachdError
from coachd.redact import redact


def discover_commands() -> list[Command]:
    found = []
    for info in pkgutil.iter_modules(commands.__path__):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        command = getattr(module, "COMMAND", None)
        if isinstance(command, Command):
            found.append(command)
    return sorted(found, key=lambda c: (c.order, c.name))


def _common_options(suppress: bool) -> argparse.ArgumentParser:
    # Subcommands get SUPPRESS defaults so `coachd --debug run` is not undone by run's default.
    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=default(None), help="TOML settings")
    common.add_argument(
        "--set",
        metavar="SECTION.KEY=VALUE",
        action="append",
        default=default([]),
        help="override one setting (repeatable), e.g. --set camera.fps=60",
    )
    common.add_argument(
        "--debug", action="store_true", default=default(False), help="show tracebacks"
    )
    return common


def build_parser(available: Sequence[Command]) -> argparse.ArgumentParser:
    common = _common_options(suppress=True)
    parser = argparse.ArgumentParser(
        prog="coachd",
        description="Real-time treadmill running-form coach: watches through a camera, speaks.",
        parents=[_common_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"coachd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in available:
        child = sub.add_parser(
            command.name, help=command.help, description=command.help, parents=[common]
        )
        command.add_arguments(child)
        child.set_defaults(handler=command.run)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser(discover_commands())
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except CoachdError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"coachd: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader left early (`coachd cues list | head`): nothing more to say. Python
        # would complain again flushing stdout at exit, so that goes to /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"coachd: internal error: {type(exc).__name__}: {redact(str(exc))} "
            "(run with --debug for details)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
