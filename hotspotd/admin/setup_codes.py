"""One-time codes for the owner UI's first-run set-up (issue 12).

While no owner account exists, the set-up page asks for a code that `hotspotd init
--no-owner`, `hotspotd run` and `hotspotd demo` print (console and log): whoever can read
the appliance's console is the owner; a private source address is no proof (every customer
on the WiFi has one). A code is 16 characters from a 32-letter alphabet (80 bits), shown in
groups of four; only its SHA-256 is stored (table `admin_setup_codes`); it works once and
expires. Wrong codes are rate limited per source address by the web layer.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3

from hotspotd.admin.accounts import (
    Account,
    AdminError,
    insert_account,
    prepare_account,
)
from hotspotd.store.db import Database

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a console
CODE_LENGTH = 16
KEEP_CODES = 5  # codes waiting at once (init's, then one per start)


class WrongSetupCode(AdminError):
    code = "wrong_setup_code"
    status = 403


class SetupClosed(AdminError):
    code = "setup_closed"
    status = 409


def normalise(code: str) -> str:
    """What the owner typed, without spaces and dashes, upper case."""
    return "".join(ch for ch in (code or "").upper() if ch not in " -\t")


def _digest(code: str) -> str:
    return hashlib.sha256(normalise(code).encode()).hexdigest()


def issue_setup_code(db: Database, *, now: float, hours: int, issued_by: str) -> str:
    """A new code (shown once, to be printed); expired and spent ones are forgotten."""
    code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    with db.write() as conn:
        conn.execute("DELETE FROM admin_setup_codes WHERE expires_at <= ? OR used_at IS NOT"
                     " NULL", (now,))
        conn.execute("INSERT INTO admin_setup_codes (code_hash, issued_by, issued_at,"
                     " expires_at) VALUES (?, ?, ?, ?)",
                     (_digest(code), issued_by, now, now + hours * 3600))
        conn.execute("DELETE FROM admin_setup_codes WHERE id NOT IN (SELECT id FROM"
                     " admin_setup_codes ORDER BY id DESC LIMIT ?)", (KEEP_CODES,))
    return "-".join(code[i:i + 4] for i in range(0, CODE_LENGTH, 4))


def code_is_valid(db: Database, code: str, now: float) -> bool:
    """Is `code` one of the waiting, unexpired, unused codes? Spends nothing."""
    if len(normalise(code)) != CODE_LENGTH:
        return False
    return db.query_one("SELECT 1 FROM admin_setup_codes WHERE code_hash = ? AND used_at IS"
                        " NULL AND expires_at > ?", (_digest(code), now)) is not None


def create_first_owner(db: Database, *, code: str, username: str, password: str,
                       now: float) -> Account:
    """The owner account, made with a valid code in one transaction that spends the code.

    Raises WrongSetupCode (nothing spent), SetupClosed (an owner exists), WeakPassword or
    AdminError (the code is kept for the next try)."""
    if not code_is_valid(db, code, now):
        raise WrongSetupCode("That set-up code is wrong, used or expired. It is printed by"
                             " hotspotd when it starts (and in its log) while no owner"
                             " account exists; restart hotspotd for a new one.")
    account = prepare_account(username, password, "owner")
    with db.write() as conn:
        if owner_exists_in(conn):
            raise SetupClosed("An owner account exists already; log in instead.")
        spent = conn.execute("UPDATE admin_setup_codes SET used_at = ? WHERE code_hash = ?"
                             " AND used_at IS NULL AND expires_at > ?",
                             (now, _digest(code), now)).rowcount
        if not spent:
            raise WrongSetupCode("That set-up code was just used or expired.")
        account_id = insert_account(conn, account, now)
        conn.execute("DELETE FROM admin_setup_codes WHERE used_at IS NULL")  # set-up is over
    return Account(account_id, account.username, "owner")


def owner_exists_in(conn: sqlite3.Connection) -> bool:
    """`accounts.owner_exists` inside an open transaction."""
    return conn.execute("SELECT 1 FROM admin_accounts WHERE role = 'owner' LIMIT 1"
                        ).fetchone() is not None
