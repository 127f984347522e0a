"""What the RADIUS server hands to the rest of the daemon, and what it gets back.

These are plain values: the billing side never sees a pyrad packet, a secret or a
cleartext password (`AccessRequest.password_matches` checks a candidate instead).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple


# The two Access-Request values are named tuples, not frozen dataclasses: as immutable, and
# built several times faster, which counts on the authentication port (see fastpath.py).
class AccessRequest(NamedTuple):
    """One Access-Request from a NAS, decoded and authenticated."""

    user_name: str
    calling_station_id: str | None  # MAC as the router sends it, AA:BB:CC:DD:EE:FF
    framed_ip: str | None
    nas_address: str  # source IP of the packet
    nas_identifier: str | None
    # True if the PAP User-Password or CHAP-Password matches the given cleartext.
    password_matches: Callable[[str], bool]


class AccessDecision(NamedTuple):
    """The daemon's answer to an `AccessRequest`."""

    accept: bool
    session_timeout: int | None = None
    rate_limit: str | None = None  # Mikrotik-Rate-Limit, e.g. "2M/5M"
    idle_timeout: int | None = None
    reply_message: str | None = None
    total_limit_bytes: int | None = None  # data cap: Mikrotik-Total-Limit (+ -Gigawords)


@dataclass(frozen=True)
class AccountingRecord:
    """One Accounting-Request, with the 64-bit counters already folded together."""

    status_type: str  # "Start" | "Stop" | "Interim-Update" | "Accounting-On" | "Accounting-Off"
    session_id: str
    user_name: str | None
    calling_station_id: str | None
    framed_ip: str | None
    nas_address: str
    session_time: int | None
    input_octets: int  # Acct-Input-Gigawords * 2**32 + Acct-Input-Octets
    output_octets: int
    input_packets: int
    output_packets: int
    terminate_cause: str | None
    received_at: float


class DropPacket(Exception):
    """A received packet must not be answered; `reason` names the stats counter."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
