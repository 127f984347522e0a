"""A throwaway PostgreSQL cluster for the hub's tests: initdb, pg_ctl start, one database each.

    cluster = PostgresCluster.start()     # initdb in a new temp dir, TCP on a free port
    dsn = cluster.create_database()       # a fresh, empty database for one test
    cluster.stop()                        # pg_ctl stop -m immediate, directory removed

PostgreSQL refuses to run as root, so as root every binary runs as the `postgres` user
(`runuser -u postgres`) in a directory chown'ed to it. Binaries are found on PATH or in
/usr/lib/postgresql/<version>/bin (Debian's layout). When none is found the tests skip
with the reason, unless HOTSPOTD_REQUIRE_POSTGRES=1, where they fail (CI must not pass
by skipping).
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

REQUIRE_ENV = "HOTSPOTD_REQUIRE_POSTGRES"
_counter = itertools.count(1)


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl (newest Debian version first), or None."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda path: int(Path(path).parent.parent.name), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def unavailable_reason() -> str | None:
    """Why no cluster can be started here, or None when one can."""
    bindir = find_bindir()
    if bindir is None:
        return "PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: cannot start PostgreSQL as postgres"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresCluster:
    bindir: Path
    directory: Path
    port: int

    @property
    def socket_dir(self) -> Path:
        return self.directory / "run"

    @classmethod
    def start(cls) -> PostgresCluster:
        bindir = find_bindir()
        if bindir is None:
            raise RuntimeError(unavailable_reason() or "no PostgreSQL")
        directory = Path(tempfile.mkdtemp(prefix="hotspotd-pg-"))
        cluster = cls(bindir, directory, free_port())
        (directory / "run").mkdir()
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
            shutil.chown(directory / "run", "postgres", "postgres")
        cluster._run("initdb", "-D", str(directory / "data"), "-U", "postgres",
                     "--auth=trust", "-E", "UTF8", "--no-sync")
        # fsync off: the tests kill the hub's process, never PostgreSQL or the machine.
        options = (f"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {cluster.socket_dir}"
                   " -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        cluster._run("pg_ctl", "-D", str(directory / "data"), "-l", str(directory / "log"),
                     "-o", options, "-w", "-t", "30", "start")
        return cluster

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60,
                                cwd=self.directory)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): "
                               f"{result.stderr.strip() or result.stdout.strip()}")

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def create_database(self, prefix: str = "hub") -> str:
        """A new empty database; returns its DSN."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(_counter)}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate",
                      "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
