"""A throwaway PostgreSQL server for tests: Debian's postgresql package, initdb and pg_ctl on a
unix socket in a temporary directory, no TCP, touching no system cluster.

As root the server runs as the `postgres` user (it refuses root), so the directory is made
theirs; the test connects over the socket as that role (trust authentication on the socket).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

import pytest

DATABASE = "coachd"


def _bin_dir() -> Optional[Path]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version)
    return Path(found[-1]).parent if found else None


def _version(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


class PgServer:
    """Start with start(), stop()/start() again at will (the data stays), close() at the end."""

    def __init__(self) -> None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            pytest.skip("PostgreSQL is not installed (make setup installs the postgresql package)")
        self._bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="coachd-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self._as: list[str] = []
        self.role = pwd.getpwuid(os.getuid()).pw_name
        if os.getuid() == 0:
            self.role = "postgres"
            self._as = ["runuser", "-u", "postgres", "--"]
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        os.chmod(self.root, 0o755)
        initdb = ["-D", str(self.data), "-A", "trust", "-U", self.role, "--no-sync"]
        self._run("initdb", *initdb, "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql://{self.role}@/{DATABASE}?host={self.socket_dir}"

    def start(self) -> None:
        options = f"-k {self.socket_dir} -c listen_addresses='' -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w",
            "start",
        )  # fmt: skip
        if not self._created:
            self._run("createdb", "-h", str(self.socket_dir), "-U", self.role, DATABASE)
            self._created = True

    _created = False

    def stop(self) -> None:
        """A fast shutdown, as a server restarting for maintenance does."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        subprocess.run(
            [*self._as, str(self._bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)

    def sql(self, query: str) -> list[tuple[object, ...]]:
        """Rows of one query, read over the socket with psycopg."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            return list(conn.execute(query).fetchall())

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [*self._as, str(self._bin / tool), *args], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr[-2000:]}")
