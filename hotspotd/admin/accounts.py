"""Owner UI accounts: an owner (full rights) and optional cashiers (read-only).

Passwords are hashed with argon2id (argon2-cffi's defaults); there is no default password:
the first owner is made by `hotspotd init` or by the first-visit set-up page.
"""

from __future__ import annotations

import functools
import sqlite3
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hotspotd.ledger.errors import BillingError
from hotspotd.store.db import Database

ROLES = ("owner", "cashier")
MIN_PASSWORD_LENGTH = 10
# OWASP's argon2id recommendation (19 MiB, 2 passes): argon2-cffi's default 64 MiB per
# login is a third of a Pi-class appliance's memory budget.
_HASHER = PasswordHasher(memory_cost=19 * 1024, time_cost=2, parallelism=1)
# Verified against when the username is unknown, so both cases take the same time.
@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for an unknown username (the same time as a real one);
    made at first use, not at import: it costs ~40 ms of every start, more on a Pi."""
    return _HASHER.hash("not a real password, only for timing")


class AdminError(BillingError):
    """Something the owner UI refuses; `message` says why in plain words."""

    code = "admin_invalid"


class AccountExists(AdminError):
    code = "account_exists"
    status = 409


class WeakPassword(AdminError):
    code = "weak_password"


class UnknownAccount(AdminError):
    code = "unknown_account"
    status = 404


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    role: str

    @property
    def can_change(self) -> bool:
        """Owners change things; cashiers only look."""
        return self.role == "owner"


def check_password_strength(password: str, username: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.")
    if password.lower() == username.lower() or len(set(password)) < 4:
        raise WeakPassword("That password is too easy to guess; choose another.")


def _check_username(username: str) -> str:
    name = (username or "").strip()
    if not 1 <= len(name) <= 40 or not name.replace("_", "").replace(".", "").replace(
            "-", "").isalnum():
        raise AdminError("A username is 1-40 letters, digits, dots, dashes or underscores.")
    return name


@dataclass(frozen=True)
class NewAccount:
    """A checked username, role and password hash, ready to be inserted."""

    username: str
    role: str
    password_hash: str


def prepare_account(username: str, password: str, role: str = "owner") -> NewAccount:
    """Check and hash. Raises WeakPassword or AdminError."""
    name = _check_username(username)
    if role not in ROLES:
        raise AdminError(f"A role is one of {', '.join(ROLES)}.")
    check_password_strength(password, name)
    return NewAccount(name, role, _HASHER.hash(password))


def insert_account(conn: sqlite3.Connection, account: NewAccount, now: float) -> int:
    """Insert inside the caller's transaction; returns the id. Raises AccountExists."""
    try:
        cursor = conn.execute("INSERT INTO admin_accounts (username, password_hash, role,"
                              " created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                              (account.username, account.password_hash, account.role, now, now))
    except sqlite3.IntegrityError:
        raise AccountExists(f"An account named {account.username!r} exists already.") from None
    return int(cursor.lastrowid or 0)


def create_account(db: Database, *, username: str, password: str, role: str = "owner",
                   now: float) -> None:
    """Store a new account. Raises AccountExists, WeakPassword or AdminError."""
    account = prepare_account(username, password, role)
    with db.write() as conn:
        insert_account(conn, account, now)


def verify_login(db: Database, username: str, password: str, now: float) -> Account | None:
    """The account if the password is right, else None (same work either way)."""
    row = db.query_one("SELECT * FROM admin_accounts WHERE username = ?",
                       ((username or "").strip(),))
    stored = row["password_hash"] if row else _dummy_hash()
    try:
        _HASHER.verify(stored, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    with db.write() as conn:
        if _HASHER.check_needs_rehash(stored):
            conn.execute("UPDATE admin_accounts SET password_hash = ? WHERE id = ?",
                         (_HASHER.hash(password), row["id"]))
        conn.execute("UPDATE admin_accounts SET last_login_at = ? WHERE id = ?",
                     (now, row["id"]))
    return Account(row["id"], row["username"], row["role"])


def owner_exists(db: Database) -> bool:
    return db.query_one("SELECT 1 FROM admin_accounts WHERE role = 'owner' LIMIT 1") is not None


def get_account(db: Database, account_id: int, *, issued_at: float | None = None
                ) -> Account | None:
    """The account, if it exists and (given `issued_at`) that session was not ended since."""
    row = db.query_one("SELECT id, username, role, sessions_valid_after FROM admin_accounts"
                       " WHERE id = ?", (account_id,))
    if row is None or (issued_at is not None and issued_at < row["sessions_valid_after"]):
        return None
    return Account(row["id"], row["username"], row["role"])


def end_sessions(db: Database, *, account_id: int, now: float) -> None:
    """Log the account out everywhere: sessions issued before `now` stop working."""
    with db.write() as conn:
        conn.execute("UPDATE admin_accounts SET sessions_valid_after = ? WHERE id = ?",
                     (now, account_id))


def list_accounts(db: Database) -> list[Account]:
    return [Account(r["id"], r["username"], r["role"]) for r in db.query(
        "SELECT id, username, role FROM admin_accounts ORDER BY id")]


def set_password(db: Database, *, username: str, password: str, now: float) -> None:
    check_password_strength(password, username)
    with db.write() as conn:
        cursor = conn.execute("UPDATE admin_accounts SET password_hash = ?, updated_at = ?,"
                              " sessions_valid_after = ? WHERE username = ?",
                              (_HASHER.hash(password), now, now, username))
        if not cursor.rowcount:
            raise UnknownAccount(f"No account named {username!r}.")
