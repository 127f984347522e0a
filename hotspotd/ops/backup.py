"""Backups of the SQLite database with the online backup API, and restore.

`backup_database` copies a live database (WAL, being written to) into one self-contained
file: the copy is made inside one read transaction on the source, so it is a consistent
snapshot of a committed state however long it takes (writers go on beside it); it is
checked (`PRAGMA quick_check`) and moved into place atomically, mode 0600. The copy goes
`STEP_PAGES` pages at a time, so a daemon that is told to stop abandons a backup in
progress (`BackupCancelled`, nothing left behind) instead of making systemd wait for it: a
year of payments takes seconds to copy and check here, a minute on an SD card.
`scheduled_backup` does that into the backup directory with a timestamped name and keeps
the newest `keep` files. `restore_database` checks a backup, keeps a copy of the database
it replaces, and copies the backup in (again with the backup API, so the target's WAL is
handled); the daemon must be stopped.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from hotspotd.ops.lock import DataDirBusy, is_locked
from hotspotd.store.db import interrupted_when
from hotspotd.store.migrations import available_migrations

log = logging.getLogger(__name__)

PREFIX = "hotspotd-"
SUFFIX = ".sqlite3"
BUSY_TIMEOUT_SECONDS = 30.0
STEP_PAGES = 1024  # 4 MiB per step at SQLite's 4 KiB pages: how long a stop may wait


class BackupError(Exception):
    """A backup could not be made, or a file is not a usable hotspotd backup."""


class BackupCancelled(BackupError):
    """The daemon is stopping: the backup was abandoned and nothing was written."""


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    bytes: int
    schema_version: int
    payments: int


def backup_database(source: Path, destination: Path, *,
                    stop: threading.Event | None = None) -> BackupInfo:
    """Copy the database at `source` (it may be in use) to `destination`, atomically.

    When `stop` is set (the daemon stops) the backup is abandoned within one step or the
    check's next look: `BackupCancelled`, and no file is left behind."""
    if not Path(source).exists():
        raise BackupError(f"{source}: no database there")
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        dst = sqlite3.connect(partial)
        try:
            _copy_snapshot(src, dst, stop)
            dst.execute("PRAGMA journal_mode=DELETE")
            version, payments = _checked(dst, destination, stop)
        finally:
            dst.close()
        _fsync(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    os.replace(partial, destination)
    return BackupInfo(destination, destination.stat().st_size, version, payments)


def _copy_snapshot(src: sqlite3.Connection, dst: sqlite3.Connection,
                   stop: threading.Event | None) -> None:
    """Every page of `src` into `dst`, `STEP_PAGES` at a time, inside one read transaction
    on `src`: the copy is the snapshot of when it began, whatever is committed meanwhile
    (WAL), and never restarts."""
    def between_steps(_status: int, _remaining: int, _total: int) -> None:
        if stop is not None and stop.is_set():
            raise BackupCancelled("backup abandoned: the daemon is stopping")

    src.execute("BEGIN")
    try:
        src.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # the snapshot begins
        src.backup(dst, pages=STEP_PAGES, progress=between_steps)
    finally:
        src.execute("COMMIT")


def _checked(dst: sqlite3.Connection, destination: Path,
             stop: threading.Event | None) -> tuple[int, int]:
    """`_describe` of the copy, abandoned if `stop` is set meanwhile."""
    if stop is None:
        return _describe(dst, destination)
    with interrupted_when(stop, dst):
        try:
            return _describe(dst, destination)
        except BackupError:
            if stop.is_set():
                raise BackupCancelled("backup abandoned: the daemon is stopping") from None
            raise


def describe_backup(path: Path) -> BackupInfo:
    """Check that `path` is a sound hotspotd database and say what it holds."""
    if not Path(path).is_file():
        raise BackupError(f"{path}: no such file")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        version, payments = _describe(conn, path)
    finally:
        conn.close()
    return BackupInfo(Path(path), Path(path).stat().st_size, version, payments)


def _describe(conn: sqlite3.Connection, path: Path) -> tuple[int, int]:
    """Check the database on `conn`; its schema version and how many payments it holds."""
    _check(conn, path)
    try:
        version = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]
        payments = conn.execute("SELECT COUNT(*) FROM payments").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: not a hotspotd database ({exc})") from None
    return int(version or 0), int(payments)


def _check(conn: sqlite3.Connection, path: Path) -> None:
    try:
        result = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: not an SQLite database ({exc})") from None
    if result != "ok":
        raise BackupError(f"{path}: integrity check failed: {result}")


def scheduled_backup(database: Path, directory: Path, *, keep: int, now: float | None = None,
                     stop: threading.Event | None = None) -> BackupInfo:
    """A timestamped backup into `directory`, then the oldest beyond `keep` are deleted.
    `stop` abandons it (see `backup_database`)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    info = backup_database(database, Path(directory) / f"{PREFIX}{stamp}{SUFFIX}", stop=stop)
    removed = rotate(Path(directory), keep)
    log.info("backup written: %s (%s bytes, schema %s); %s old backup(s) removed",
             info.path, info.bytes, info.schema_version, len(removed))
    return info


def rotate(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` scheduled backups in `directory`."""
    backups = sorted(p for p in directory.glob(f"{PREFIX}*{SUFFIX}")
                     if not p.name.startswith(f"{PREFIX}pre-restore"))
    doomed = backups[:-keep] if keep > 0 else backups
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def restore_database(backup: Path, database: Path, *, keep_copy_in: Path) -> BackupInfo:
    """Replace `database` by `backup`. Refuses while a daemon runs on the data directory."""
    info = describe_backup(backup)
    newest = max(m.version for m in available_migrations())
    if info.schema_version > newest:
        raise BackupError(f"{backup}: schema version {info.schema_version} is newer than this"
                          f" hotspotd ({newest})")
    database = Path(database)
    if is_locked(database.parent):
        raise DataDirBusy(f"{database.parent}: hotspotd is running; stop it first"
                          " (systemctl stop hotspotd)")
    if database.exists():
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        saved = backup_database(database, keep_copy_in / f"{PREFIX}pre-restore-{stamp}{SUFFIX}")
        log.info("the replaced database was kept as %s", saved.path)
    database.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    dst = sqlite3.connect(database, timeout=BUSY_TIMEOUT_SECONDS)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")
        _check(dst, database)
    finally:
        dst.close()
        src.close()
    os.chmod(database, 0o600)
    return describe_backup(database)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
