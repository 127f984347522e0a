"""What appliance and hub agree on: the batch's shape, its digest, its limits, the errors.

Both sides import this module, so the digest is computed by one function: SHA-256 of the
events as canonical JSON (keys sorted, no spaces, UTF-8). docs/HUB.md describes the wire.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

BATCHES_PATH = "/v1/batches"
ENROL_PATH = "/v1/enroll"
CLAIM_PATH = "/v1/vouchers/claim"  # a venue redeems a code of the network (docs/HUB.md)
CLAIMS_PATH = "/v1/vouchers/claims"  # a home venue hears which of its codes were claimed
TIME_CLAIM_PATH = "/v1/time/claim"  # paid time moves to a sister venue (docs/HUB.md)
TIME_CLAIMS_PATH = "/v1/time/claims"  # the home venue hears which payments' time moved
MAX_CLAIMS = 500
MAX_EVENTS = 500
MAX_BODY_BYTES = 1024 * 1024
EVENT_KINDS = ("payment", "grant", "voucher", "device", "unmatched", "health")


class BatchRefused(Exception):
    """The hub refuses a request: `status` (HTTP), `code` (a word) and `reason` (a sentence).

    `extra` goes into the JSON answer too (e.g. the hub's `acked` for a gap)."""

    def __init__(self, status: int, code: str, reason: str, **extra: Any) -> None:
        super().__init__(f"{code}: {reason}")
        self.status, self.code, self.reason, self.extra = status, code, reason, extra

    def as_json(self) -> dict[str, Any]:
        return {"error": self.code, "reason": self.reason, **self.extra}


def canonical(events: Sequence[dict[str, Any]]) -> bytes:
    return json.dumps(list(events), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def digest(events: Sequence[dict[str, Any]]) -> str:
    """SHA-256 (hex) of the events' canonical JSON: what `digest` in a batch must be."""
    return hashlib.sha256(canonical(events)).hexdigest()


def make_batch(appliance_id: int, events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The body of POST /v1/batches for `events` (non-empty, in seq order)."""
    return {"appliance": appliance_id, "first_seq": events[0]["seq"],
            "last_seq": events[-1]["seq"], "events": list(events), "digest": digest(events)}


def key_hash(key: str) -> str:
    """How the hub stores an appliance key or a token: its SHA-256. The key is 32 random
    bytes, so a fast hash is enough (no password to stretch)."""
    return hashlib.sha256(key.encode()).hexdigest()
