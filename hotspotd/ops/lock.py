"""One daemon per data directory: an flock on `<data dir>/hotspotd.lock` while it runs.

The kernel drops the lock when the process dies (even by SIGKILL), so a stale lock file
never blocks a restart. `hotspotd restore` uses `is_locked` to refuse to swap the database
under a running daemon.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "hotspotd.lock"


class DataDirBusy(RuntimeError):
    """Another hotspotd process holds this data directory."""


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirBusy(f"{self.path.parent}: another hotspotd is running on this data"
                              " directory (stop it first)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def is_locked(data_dir: Path) -> bool:
    """True if a running hotspotd holds `data_dir`."""
    path = Path(data_dir) / LOCK_FILE
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
