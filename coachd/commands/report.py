"""`coachd report SESSION --html OUT`: one session's metrics and cues as an HTML page."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from coachd.commands import Command
from coachd.commands.sessions import add_database_argument, history_errors, open_history
from coachd.errors import UsageError

# Earlier sessions of the same runner shown in the comparison.
HISTORY_SESSIONS = 10


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", help="session id (see `coachd sessions list`) or 'last'")
    parser.add_argument("--html", metavar="OUT", required=True, help="write the page here")
    add_database_argument(parser)


def _run(args: argparse.Namespace) -> int:
    from coachd.service.report import render_report

    store = open_history(args)
    with history_errors(store):
        try:
            if args.session == "last":
                newest = store.list_sessions(limit=1)
                if not newest:
                    raise UsageError(f"no sessions in {store.where} yet")
                session_id = newest[0].id
            else:
                try:
                    session_id = int(args.session)
                except ValueError:
                    raise UsageError(
                        f"SESSION {args.session!r}: expected a session id number or 'last'"
                    ) from None
            try:
                record = store.load_session(session_id)
            except LookupError:
                raise UsageError(
                    f"no session {session_id} in {store.where}; `coachd sessions list` shows them"
                ) from None
            history = []
            if record.row.runner:
                earlier = [
                    r
                    for r in store.list_sessions(runner=record.row.runner)
                    if r.started < record.row.started
                ][:HISTORY_SESSIONS]
                history = [store.load_session(r.id) for r in reversed(earlier)]
                runner = store.find_runner(record.row.runner)
                if runner is not None:  # known by QR code: their name, never the hash
                    named = dataclasses.replace(record.row, runner=runner.name)
                    record = dataclasses.replace(record, row=named)
        finally:
            store.close()
    page = render_report(record, history)
    out = Path(args.html)
    if out.parent and not out.parent.is_dir():
        raise UsageError(f"--html {out}: folder {out.parent} does not exist")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out} (session {session_id}, {len(record.strides)} strides)")
    return 0


COMMAND = Command("report", "write an HTML report of one session", _add_arguments, _run, 61)
