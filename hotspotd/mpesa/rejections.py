"""Callbacks we refused or could not use, kept with why (table `callback_rejections`)."""

from __future__ import annotations

import json
import logging
from typing import Any

from hotspotd.store.db import Database

log = logging.getLogger(__name__)

BODY_KEPT = 2000  # characters of a rejected body kept for the owner


def record_rejection(db: Database, *, kind: str, reason: str, now: float,
                     channel: str | None = None, source: str | None = None,
                     reference: str | None = None, body: Any = None) -> None:
    """Keep a callback we refused, with why (bodies truncated; never secrets: the path
    token is not part of what is stored)."""
    text = body if isinstance(body, str) or body is None else json.dumps(body, default=str)
    with db.write() as conn:
        conn.execute(
            "INSERT INTO callback_rejections (received_at, kind, channel, source, reference,"
            " reason, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (now, kind, channel, source, reference, reason[:500],
             text[:BODY_KEPT] if text else None))
    log.warning("%s callback from %s rejected: %s", kind, source, reason)
