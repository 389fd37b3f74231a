"""`coachd report SESSION [--html OUT]`: one session as a page a runner can read."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from coachd.commands import Command
from coachd.commands.sessions import add_database_argument, history_errors, open_history
from coachd.errors import CoachdError, UsageError
from coachd.service.store import HistoryReader


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", help="session id (see `coachd sessions list`) or 'last'")
    parser.add_argument(
        "--html", metavar="OUT", help="write the page here (default: session-N.html here)"
    )
    add_database_argument(parser)


def _session_id(text: str, store: HistoryReader) -> int:
    if text == "last":
        newest = store.list_sessions(limit=1)
        if not newest:
            raise UsageError(f"no sessions in {store.where} yet")
        return newest[0].id
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"SESSION {text!r}: expected a session id number or 'last'") from None


def _run(args: argparse.Namespace) -> int:
    from coachd.coach import load_packs
    from coachd.commands import settings_from_args
    from coachd.service.report import load_report, render_report

    try:  # which metric each cue is about: marked on that metric's plot
        rules = load_packs(settings_from_args(args, {}).settings.engine).rules
    except CoachdError:
        rules = ()  # a broken pack does not stop a report: its cues are listed, not marked
    store = open_history(args)
    with history_errors(store):
        try:
            session_id = _session_id(args.session, store)
            try:
                record, history = load_report(store, session_id)
            except LookupError:
                raise UsageError(
                    f"no session {session_id} in {store.where}; `coachd sessions list` shows them"
                ) from None
        finally:
            store.close()
    page = render_report(record, history, {rule.id: rule.metrics for rule in rules})
    out = Path(args.html or f"session-{session_id}.html")
    if out.parent and not out.parent.is_dir():
        raise UsageError(f"--html {out}: folder {out.parent} does not exist")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    print(
        f"wrote {out} (session {session_id}, {len(record.strides)} strides): open it in a browser"
    )
    return 0


COMMAND = Command(
    "report", "write a page a runner can read about one session", _add_arguments, _run, 61
)
