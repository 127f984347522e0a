"""Owner accounts of the hub's UI: argon2id hashes in the hub's database, no default account.

The first account is made with `hotspotd hub owner --username U` (password on stdin).
Same argon2 parameters as the appliance's owner accounts (hotspotd/admin/accounts.py):
OWASP's 19 MiB, 2 passes.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hotspotd.hub.enrolment import HubCommandError
from hotspotd.hub.pgstore import HubStore

MIN_PASSWORD_LENGTH = 10
_HASHER = PasswordHasher(memory_cost=19 * 1024, time_cost=2, parallelism=1)


@functools.cache
def _dummy_hash() -> str:
    """Verified against for an unknown username, so both cases take the same time."""
    return _HASHER.hash("not a real password, only for timing")


def create_owner(store: HubStore, username: str, password: str,
                 now: Callable[[], float] = time.time) -> int:
    """Create (or set the password of) an owner account; returns its id."""
    username = username.strip()
    if not 1 <= len(username) <= 40 or not username.replace("_", "").replace(
            ".", "").replace("-", "").isalnum():
        raise HubCommandError("a username is 1-40 letters, digits, dots, dashes or"
                              " underscores")
    if len(password) < MIN_PASSWORD_LENGTH or password.lower() == username.lower():
        raise HubCommandError(f"choose a password of at least {MIN_PASSWORD_LENGTH}"
                              " characters, not the username")
    with store.transaction() as conn:
        row = conn.execute("INSERT INTO owners (username, password_hash, created_at)"
                           " VALUES (%s, %s, %s) ON CONFLICT (username) DO UPDATE SET"
                           " password_hash = EXCLUDED.password_hash RETURNING id",
                           (username, _HASHER.hash(password), now())).fetchone()
    return row["id"]


def check_login(store: HubStore, username: str, password: str,
                now: Callable[[], float] = time.time) -> str | None:
    """The username if the password is right, else None (same time either way)."""
    with store.connection() as conn:
        row = conn.execute("SELECT id, username, password_hash FROM owners"
                           " WHERE username = %s", (username.strip(),)).fetchone()
    try:
        _HASHER.verify(row["password_hash"] if row else _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    with store.connection() as conn:
        conn.execute("UPDATE owners SET last_login_at = %s WHERE id = %s", (now(), row["id"]))
    return row["username"]
