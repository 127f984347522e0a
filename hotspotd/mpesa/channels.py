"""Daraja channels: extra credential sets (paybill or till, environment, consumer key and
secret, passkey, shortcode, callback path token) kept in the database, every secret
encrypted with `SecretBox` (AES-GCM, key in `[security] key_file`, bound to the channel and
field so one ciphertext cannot stand in for another). Never logged, never returned: a
Channel's repr masks them.

The configured `[daraja]` section is the channel "default". Stored channels add their own
secret callback path and credentials. New STK pushes go out on the active channel (at most
one stored channel is active, `set_active_channel`; none: "default"); each payment keeps
its channel for its queries and callbacks, and Pull runs for every channel
(`mpesa.channel_clients`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, fields
from pathlib import Path

from hotspotd.secretbox import SecretBox
from hotspotd.store.db import Database

SECRET_FIELDS = ("consumer_key", "consumer_secret", "passkey", "callback_token")
KINDS = ("paybill", "till")


@dataclass(frozen=True)
class Channel:
    name: str
    kind: str
    environment: str
    base_url: str
    shortcode: str
    consumer_key: str
    consumer_secret: str
    passkey: str
    callback_token: str
    till_number: str = ""

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={'***' if f.name in SECRET_FIELDS else repr(getattr(self, f.name))}"
            for f in fields(self))
        return f"Channel({shown})"

    def public(self) -> dict[str, str]:
        """What may be shown: everything but the secrets."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in SECRET_FIELDS}


def _purpose(name: str, field_name: str) -> str:
    return f"daraja-channel/{name}/{field_name}"


def save_channel(db: Database, box: SecretBox, channel: Channel, now: float) -> None:
    """Insert or replace a channel, its secrets encrypted."""
    if channel.kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    if channel.kind == "till" and not channel.till_number:
        raise ValueError("a till channel needs a till number")
    sealed = {f: box.encrypt(getattr(channel, f), purpose=_purpose(channel.name, f))
              for f in SECRET_FIELDS}
    with db.write() as conn:
        conn.execute(
            "INSERT INTO daraja_channels (name, kind, environment, base_url, shortcode,"
            " till_number, consumer_key_enc, consumer_secret_enc, passkey_enc,"
            " callback_token_enc, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, ?) ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, environment ="
            " excluded.environment, base_url = excluded.base_url, shortcode ="
            " excluded.shortcode, till_number = excluded.till_number, consumer_key_enc ="
            " excluded.consumer_key_enc, consumer_secret_enc = excluded.consumer_secret_enc,"
            " passkey_enc = excluded.passkey_enc, callback_token_enc ="
            " excluded.callback_token_enc, updated_at = excluded.updated_at",
            (channel.name, channel.kind, channel.environment, channel.base_url,
             channel.shortcode, channel.till_number, sealed["consumer_key"],
             sealed["consumer_secret"], sealed["passkey"], sealed["callback_token"], now, now))


def has_channels(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM daraja_channels LIMIT 1").fetchone() is not None


def load_channels(db: Database, box: SecretBox) -> list[Channel]:
    """Every stored channel, decrypted (SecretBoxError if the key is wrong or data altered)."""
    channels = []
    for row in db.query("SELECT * FROM daraja_channels ORDER BY name"):
        secrets = {f: box.decrypt(row[f"{f}_enc"], purpose=_purpose(row["name"], f))
                   for f in SECRET_FIELDS}
        channels.append(Channel(name=row["name"], kind=row["kind"],
                                environment=row["environment"], base_url=row["base_url"],
                                shortcode=row["shortcode"], till_number=row["till_number"],
                                **secrets))
    return channels


DEFAULT_CHANNEL = "default"  # the `[daraja]` section of the configuration file


def load_channel(db: Database, box: SecretBox, name: str) -> Channel | None:
    """One stored channel, decrypted; None if there is no such channel."""
    row = db.query_one("SELECT * FROM daraja_channels WHERE name = ?", (name,))
    if row is None:
        return None
    secrets = {f: box.decrypt(row[f"{f}_enc"], purpose=_purpose(row["name"], f))
               for f in SECRET_FIELDS}
    return Channel(name=row["name"], kind=row["kind"], environment=row["environment"],
                   base_url=row["base_url"], shortcode=row["shortcode"],
                   till_number=row["till_number"], **secrets)


def channel_versions(conn: sqlite3.Connection) -> dict[str, float]:
    """Every stored channel's name -> updated_at (a changed channel is rebuilt)."""
    return {row[0]: row[1] for row in
            conn.execute("SELECT name, updated_at FROM daraja_channels ORDER BY name")}


def active_channel(conn: sqlite3.Connection) -> str:
    """The channel new STK pushes go out on: the stored channel marked active, else the
    configuration's `[daraja]` channel ("default")."""
    row = conn.execute("SELECT name FROM daraja_channels WHERE active = 1").fetchone()
    return str(row[0]) if row else DEFAULT_CHANNEL


def set_active_channel(db: Database, name: str) -> None:
    """Make `name` the push channel ("default": the configuration's). ValueError if there
    is no such stored channel. Payments already made keep their own channel."""
    with db.write() as conn:
        if name != DEFAULT_CHANNEL and conn.execute(
                "SELECT 1 FROM daraja_channels WHERE name = ?", (name,)).fetchone() is None:
            raise ValueError(f"no stored Daraja channel named {name!r}")
        conn.execute("UPDATE daraja_channels SET active = 0 WHERE active = 1")
        if name != DEFAULT_CHANNEL:
            conn.execute("UPDATE daraja_channels SET active = 1 WHERE name = ?", (name,))


PUBLIC_COLUMNS = ("name", "kind", "environment", "base_url", "shortcode", "till_number")


def remove_channel(db: Database, name: str) -> dict[str, str]:
    """Delete a stored channel; returns its public fields (for the audit log).

    Refused (ValueError with the reason, nothing changed) while anything still needs the
    channel's credentials or callback path: it is the push channel, a payment pushed on it
    has no final status yet (its STK query and callback use this channel), or a C2B
    confirmation that arrived on it still waits for its Pull check (`c2b_unverified`).
    Decided rows are history and do not block. Its `pull_state` row goes too, so a later
    channel of the same name registers Pull with its own credentials."""
    if name == DEFAULT_CHANNEL:
        raise ValueError("the default channel is the configuration file's [daraja] section;"
                         " it cannot be removed here")
    with db.write() as conn:
        row = conn.execute(f"SELECT {', '.join(PUBLIC_COLUMNS)}, active FROM daraja_channels"
                           " WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ValueError(f"no stored Daraja channel named {name!r}")
        problem = _still_needed(conn, name, active=bool(row["active"]))
        if problem:
            raise ValueError(problem)
        conn.execute("DELETE FROM daraja_channels WHERE name = ?", (name,))
        conn.execute("DELETE FROM pull_state WHERE channel = ?", (name,))
    return {column: row[column] for column in PUBLIC_COLUMNS}


def _still_needed(conn: sqlite3.Connection, name: str, *, active: bool) -> str:
    """Why channel `name` cannot go now ("" when it can)."""
    if active:
        return "it is in use for new payments; choose another channel for new payments first"
    pending = conn.execute("SELECT COUNT(*) FROM payments WHERE channel = ? AND"
                           " status = 'pending'", (name,)).fetchone()[0]
    if pending:
        return (f"{pending} payment(s) pushed on it have no final answer yet (waiting to be"
                " sent, waiting for the customer, or uncertain); try again once they have"
                " settled")
    waiting = conn.execute("SELECT COUNT(*) FROM c2b_unverified WHERE channel = ? AND"
                           " state = 'pending'", (name,)).fetchone()[0]
    if waiting:
        return (f"{waiting} M-Pesa confirmation(s) received on its callback URL are still"
                " being checked with Pull Transactions; try again once they are decided")
    return ""


def callback_tokens(db: Database, key_file: Path) -> dict[str, str]:
    """Callback path token -> channel name, for the channels stored in the database (their
    secrets need the `[security] key_file`; a missing or wrong key stops start-up)."""
    if not has_channels(db.connection()):
        return {}
    box = SecretBox.from_key_file(key_file)
    return {channel.callback_token: channel.name for channel in load_channels(db, box)}
