"""`coachd runners add|list|rename|forget`: the runners a kiosk (or a gym's server) knows.

A runner added here gets a QR code (a PNG file and on the terminal) to show the camera; only a
keyed hash of what it says is stored, so the code cannot be read back from any database.
"""

from __future__ import annotations

import argparse
import secrets
import time
from pathlib import Path
from typing import Any, Union

import segno

from coachd.commands import Command, add_json_argument, print_json, settings_from_args
from coachd.commands.sessions import history_errors, open_server_or_fail
from coachd.errors import UsageError
from coachd.service.runners import load_key, runner_key
from coachd.service.server_store import ServerStore
from coachd.service.store import DB_NAME, RunnerRow, SessionStore, state_directory

# The code's content: a random token nobody can guess from a name.
CODE_PREFIX = "coachd-runner:"
PNG_SCALE = 10


_ACTIONS = {"add": 1, "list": 0, "rename": 2, "forget": 1}  # how many names each takes


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=list(_ACTIONS),
        help="add NAME: a new runner and their QR code; list: who is known, with this week's "
        "minutes; rename NAME NEW_NAME; forget NAME: delete them and their whole history",
    )
    parser.add_argument("names", nargs="*", metavar="NAME")
    parser.add_argument("--png", metavar="PATH", help="add: where to write the code (NAME.png)")
    add_json_argument(parser)


def _open(args: argparse.Namespace) -> Union[ServerStore, SessionStore]:
    """The gym's server when store.url names one, else this machine's database (made if new)."""
    settings = settings_from_args(args).settings
    if settings.store.url:
        return open_server_or_fail(settings.store.url)
    return SessionStore(state_directory(settings.service, reading=True) / DB_NAME, recover=False)


def _find(history: Union[ServerStore, SessionStore], name: str) -> RunnerRow:
    try:
        key = history.resolve_runner(name)
    except LookupError as exc:
        raise UsageError(str(exc)) from None
    row = history.find_runner(key)
    if row is None:
        raise UsageError(f"no runner called {name!r}; `coachd runners list` shows who is known")
    return row


def _add(args: argparse.Namespace, history: Union[ServerStore, SessionStore]) -> int:
    name = args.names[0].strip()
    if not name:
        raise UsageError("the runner's name is empty; give the name they are greeted by")
    if any(r.name == name for r in history.list_runners()):
        raise UsageError(f"a runner called {name!r} is known already; choose another name")
    settings = settings_from_args(args).settings
    key = load_key(settings.runners.key, state_directory(settings.service))
    content = CODE_PREFIX + secrets.token_urlsafe(18)
    history.add_runner(runner_key(key, content), name)
    code = segno.make(content, error="m", micro=False)
    png = Path(args.png or f"{name}.png")
    code.save(str(png), scale=PNG_SCALE)
    code.terminal(compact=True)
    print(f"runner {name!r} added; their code is in {png} (show it to the camera to sign in)")
    return 0


def _list(args: argparse.Namespace, history: Union[ServerStore, SessionStore]) -> int:
    now = time.time()
    rows: list[dict[str, Any]] = []
    for runner in history.list_runners():
        sessions = history.list_sessions(runner.runner)
        rows.append(
            {
                "name": runner.name,
                "sessions": len(sessions),
                "week_minutes": round(history.weekly_minutes(runner.runner, now), 2),
                "last_session": max((s.started for s in sessions), default=None),
            }
        )
    if args.json:
        print_json(rows)
    elif not rows:
        print(f"no runners known in {history.where}")
    else:
        print(f"{'NAME':<24} {'SESSIONS':>8} {'MIN THIS WEEK':>13}")
        for row in rows:
            print(f"{row['name']:<24} {row['sessions']:>8} {row['week_minutes']:>13.1f}")
    return 0


def _forget_here_too(args: argparse.Namespace, row: RunnerRow) -> None:
    """This kiosk's own copy (its upload queue) goes as well."""
    settings = settings_from_args(args).settings
    path = state_directory(settings.service, reading=True) / DB_NAME
    if not path.is_file():
        return
    local = SessionStore(path, recover=False)
    try:
        with history_errors(local):
            gone = local.forget_runner(row.runner)
    finally:
        local.close()
    print(f"and with {gone} session(s) in {path}")


def _run(args: argparse.Namespace) -> int:
    wanted = _ACTIONS[args.action]
    if len(args.names) != wanted:
        given = " ".join(args.names) or "no name"
        raise UsageError(f"runners {args.action} takes {wanted} name(s), got: {given}")
    history = _open(args)
    try:
        with history_errors(history):
            if args.action == "add":
                return _add(args, history)
            if args.action == "list":
                return _list(args, history)
            row = _find(history, args.names[0])
            if args.action == "rename":
                history.rename_runner(row.runner, args.names[1])
                print(f"runner {row.name!r} is now {args.names[1]!r}")
                return 0
            gone = history.forget_runner(row.runner)
            print(f"runner {row.name!r} forgotten with {gone} session(s) in {history.where}")
            if isinstance(history, ServerStore):
                _forget_here_too(args, row)
            return 0
    finally:
        history.close()


COMMAND = Command(
    "runners", "add, list, rename or forget the runners known by QR code", _add_arguments, _run, 62
)
