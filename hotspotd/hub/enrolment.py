"""Venues, enrolment tokens, appliance keys and revocation, on the hub's side.

The operator creates a venue and gets a one-time token (24 h); the appliance trades the
token, once, for its id and a random key. The hub keeps only hashes of both, so a copy of
its database cannot impersonate an appliance. A revoked key is refused from then on with
the reason (ingest.authenticate).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from hotspotd.hub.pgstore import HubStore
from hotspotd.hub.protocol import BatchRefused, key_hash

log = logging.getLogger(__name__)

TOKEN_SECONDS = 24 * 3600


class HubCommandError(Exception):
    """An operator command that cannot be done (unknown venue, name taken); says why."""


def create_venue(store: HubStore, name: str, network: str | None = None,
                 now: Callable[[], float] = time.time) -> str:
    """Create the venue (or re-issue a token for one not yet enrolled); the token in clear,
    shown once."""
    name = name.strip()
    if not name:
        raise HubCommandError("a venue needs a name")
    token = "hub-enrol-" + secrets.token_urlsafe(24)
    with store.transaction() as conn:
        row = conn.execute("SELECT id, enrolled_at FROM appliances WHERE name = %s FOR UPDATE",
                           (name,)).fetchone()
        if row is not None and row["enrolled_at"] is not None:
            raise HubCommandError(f"venue {name!r} is already enrolled; revoke it and create"
                                  " a venue with a new name to replace its appliance")
        if row is None:
            row = conn.execute("INSERT INTO appliances (name, network, created_at) VALUES"
                               " (%s, %s, %s) RETURNING id", (name, network, now())).fetchone()
        conn.execute("INSERT INTO enrolment_tokens (token_hash, appliance_id, created_at,"
                     " expires_at) VALUES (%s, %s, %s, %s)",
                     (key_hash(token), row["id"], now(), now() + TOKEN_SECONDS))
    log.info("venue %r (appliance %s): enrolment token issued, valid 24 h", name, row["id"])
    return token


def enrol(store: HubStore, token: Any, now: Callable[[], float] = time.time
          ) -> dict[str, Any]:
    """Trade a valid, unused token for `{"appliance": id, "key": key, "name": venue}`."""
    if not isinstance(token, str) or not token:
        raise BatchRefused(400, "bad_request", "send {\"token\": \"...\"}")
    key = "hub-key-" + secrets.token_urlsafe(32)
    with store.transaction() as conn:
        row = conn.execute("SELECT t.appliance_id, t.expires_at, t.used_at, a.name,"
                           " a.revoked_at, a.enrolled_at FROM enrolment_tokens t"
                           " JOIN appliances a ON a.id = t.appliance_id"
                           " WHERE t.token_hash = %s FOR UPDATE",
                           (key_hash(token),)).fetchone()
        if row is None:
            raise BatchRefused(401, "unknown_token", "this enrolment token is not known here")
        if row["used_at"] is not None:
            raise BatchRefused(403, "token_used", "this enrolment token was already used")
        if row["expires_at"] < now():
            raise BatchRefused(403, "token_expired", "this enrolment token expired; ask the"
                               " operator for a new one")
        if row["revoked_at"] is not None:
            raise BatchRefused(403, "revoked", "this venue was revoked")
        if row["enrolled_at"] is not None:  # a second token must not replace its key
            raise BatchRefused(403, "already_enrolled", "this venue already has an appliance")
        conn.execute("UPDATE enrolment_tokens SET used_at = %s WHERE token_hash = %s",
                     (now(), key_hash(token)))
        conn.execute("UPDATE appliances SET key_hash = %s, enrolled_at = %s WHERE id = %s",
                     (key_hash(key), now(), row["appliance_id"]))
    log.info("venue %r enrolled as appliance %s", row["name"], row["appliance_id"])
    return {"appliance": row["appliance_id"], "key": key, "name": row["name"]}


def revoke(store: HubStore, name: str, reason: str = "",
           now: Callable[[], float] = time.time) -> int:
    """Revoke the venue's key (its requests are refused from now on); returns its id."""
    with store.transaction() as conn:
        row = conn.execute("UPDATE appliances SET revoked_at = %s, revoked_reason = %s"
                           " WHERE name = %s RETURNING id", (now(), reason or "revoked by the"
                                                              " operator", name)).fetchone()
    if row is None:
        raise HubCommandError(f"no venue named {name!r}")
    log.warning("venue %r (appliance %s) revoked: %s", name, row["id"], reason or "-")
    return row["id"]
