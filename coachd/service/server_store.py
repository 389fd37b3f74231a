"""A gym's shared sessions history in PostgreSQL (store.url = postgresql://...).

Kiosks never write coaching to it directly: each writes its own SQLite database first and its
uploader ships what the server lacks. Every session is keyed on the server by the database it
came from and its id there, every stride and cue by its number in the session, and each
upload inserts with ON CONFLICT DO NOTHING in one transaction: an upload repeated after a
lost answer or a crash lands once. Reads (history at sign-in, `coachd sessions`, reports) use
the same queries as the kiosk's SQLite (`HistoryReader`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Optional

from coachd.redact import redact
from coachd.service.schema import (
    MIGRATIONS,
    VERSION_TABLE,
    apply_migrations,
    forget_runner,
    in_dialect,
)
from coachd.service.store import HistoryReader, RunnerRow, UploadBatch

# The pool logs each failed reconnect; the uploader says when the server goes and comes back.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
# A kiosk asks the server little and must notice soon when it is gone.
CONNECT_TIMEOUT_S = 3
POOL_WAIT_S = 4.0
POOL_MAX = 2
# One advisory lock for migrations, so kiosks starting together apply each one once.
MIGRATION_LOCK = 0x636F6163  # "coac"


class ServerUnavailable(Exception):
    """The server cannot be reached or refused the work; the reason, credentials hidden."""


def is_server_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


class ServerStore(HistoryReader):
    """A pool of connections to one PostgreSQL database holding the gym's history."""

    def __init__(self, url: str, pool_max: int = POOL_MAX) -> None:
        from psycopg_pool import ConnectionPool

        self.where = redact(url)
        self._pool = ConnectionPool(
            url,
            min_size=0,
            max_size=pool_max,
            kwargs={"connect_timeout": CONNECT_TIMEOUT_S, "autocommit": False},
            timeout=POOL_WAIT_S,
            open=False,
        )
        self._pool.open(wait=False)
        self._migrated = False

    def close(self) -> None:
        self._pool.close()

    def _run(self, work: Any) -> Any:
        """`work(connection)` in one transaction; ServerUnavailable when that fails."""
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            if not self._migrated:
                self._migrate()
            with self._pool.connection() as conn, conn.transaction():
                return work(conn)
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ServerUnavailable(f"{self.where}: {redact(reason)}") from exc

    def _migrate(self) -> None:
        """Apply the migrations the server has not had (needs a role that may create tables
        only while one is missing; kiosks' roles then only read and write rows)."""
        with self._pool.connection() as conn, conn.transaction():
            applied = _applied_versions(conn)
            missing = [m for m in MIGRATIONS if m.version not in applied and m.sql("server")]
            if missing:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                conn.execute(VERSION_TABLE)
                applied = _applied_versions(conn)
            apply_migrations(conn.execute, "server", applied)
        self._migrated = True

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        query = in_dialect(sql, "server")
        rows: list[tuple[Any, ...]] = self._run(
            lambda conn: conn.execute(query, tuple(params)).fetchall()
        )
        return rows

    # --- the uploader's side -------------------------------------------------------------

    def upload(self, source: str, batch: UploadBatch) -> None:
        """Put the batch on the server, once however often it is sent."""

        def work(conn: Any) -> None:
            started, ended, runner, program, summary, kiosk = batch.head
            server_id = conn.execute(
                "INSERT INTO sessions (started, ended, runner, program, summary, kiosk, source, "
                "local_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (source, local_id) DO UPDATE SET ended = excluded.ended, "
                "summary = excluded.summary, runner = excluded.runner, "
                "program = excluded.program RETURNING id",
                (started, ended, runner, program, summary, kiosk, source, batch.session),
            ).fetchone()[0]
            with conn.cursor() as cur:
                if batch.strides:
                    cur.executemany(
                        "INSERT INTO strides (session, idx, t, side, view, metrics) "
                        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (session, idx) DO NOTHING",
                        [(server_id, *row) for row in batch.strides],
                    )
                if batch.cues:
                    cur.executemany(
                        "INSERT INTO cues (session, idx, t, cue_id, text, kind) "
                        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (session, idx) DO NOTHING",
                        [(server_id, *row) for row in batch.cues],
                    )

        self._run(work)

    def upload_runners(self, runners: Sequence[RunnerRow]) -> None:
        def work(conn: Any) -> None:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO runners (runner, name, created) VALUES (%s, %s, %s) "
                    "ON CONFLICT (runner) DO NOTHING",
                    [(r.runner, r.name, r.created) for r in runners],
                )

        if runners:
            self._run(work)

    def upload_program_states(self, states: Sequence[tuple[str, str, str, float]]) -> None:
        """The newest progress wins, whichever kiosk it came from."""

        def work(conn: Any) -> None:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO program_state (runner, program, state, updated) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (runner, program) DO UPDATE SET "
                    "state = excluded.state, updated = excluded.updated "
                    "WHERE program_state.updated < excluded.updated",
                    list(states),
                )

        if states:
            self._run(work)

    # --- runners (`coachd runners`, sign-in) ---------------------------------------------

    def add_runner(self, runner: str, name: str, created: Optional[float] = None) -> RunnerRow:
        self.upload_runners([RunnerRow(runner, name, time.time() if created is None else created)])
        found = self.find_runner(runner)
        assert found is not None
        return found

    def rename_runner(self, runner: str, name: str) -> bool:
        count: int = self._run(
            lambda conn: (
                conn.execute(
                    "UPDATE runners SET name = %s WHERE runner = %s", (name, runner)
                ).rowcount
            )
        )
        return count > 0

    def forget_runner(self, runner: str) -> int:
        gone: int = self._run(lambda conn: forget_runner(conn.execute, "server", runner))
        return gone


def _applied_versions(conn: Any) -> set[int]:
    exists = conn.execute("SELECT to_regclass('schema_version')").fetchone()[0]
    if exists is None:
        return set()
    return {int(r[0]) for r in conn.execute("SELECT version FROM schema_version").fetchall()}
