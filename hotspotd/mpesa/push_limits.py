"""Who may start a purchase: abuse limits on STK pushes (anyone on the WiFi reaches the
portal, and one client may rotate MACs and phone numbers).

Decided before anything is stored or sent, from the `payments` table itself (no second
copy of a phone number, sliding windows, a restart changes nothing):

- per device (the MAC the network places the request at): at most `open_per_device` open
  purchases (pending: in line, prompt out, or push unanswered). The same request again
  (same plan, same number) gets the open purchase back: a double tap or a reload must not
  send a second prompt, and the customer lands on the page of the one they started. A
  different request waits until the open one ends (answered, cancelled or expired). At most
  `per_device` unpaid purchases per `window`.
- per target phone: at most `per_phone` unpaid prompts per `window`, from all devices;
  after `cancel_limit` prompts it cancelled or left unanswered (1032, 1037, 1019, or ended
  by us without an answer) within `cancel_cooldown` seconds, none until that has passed.
- the payment line (mpesa.push_queue): at most `line_max` purchases wait in it (0: as
  many as the budget can push before `[settlement] queue_max_seconds`), each device at most
  `open_per_device` of them.

Paid purchases count for nothing, and purchases that ended in line never prompted anyone.
A refusal (`PushLimited`, HTTP 429) says why and when to try again, in English and Swahili.
The owner's Settings page can change the limits at run time (table `settings`, keys
`limits.*`): they are read at each check, over the configured ones.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from hotspotd.ledger.errors import BillingError
from hotspotd.ledger.payment_line import QUEUE_ENDING, queue_length
from hotspotd.ledger.payments import PENDING, TIMEOUT_CODE
from hotspotd.mpesa.customer_messages import LIMITED_CODE, limit_message
from hotspotd.store.db import Database

IGNORED_CODES = ("1032", "1037", "1019", TIMEOUT_CODE)  # cancelled, unanswered, expired


class PushLimited(BillingError):
    """Refused by a limit; `reason` is one of customer_messages.LIMIT_REASONS."""

    code = "too_many_requests"
    status = 429
    result_code = LIMITED_CODE  # for the customer's words in another language

    def __init__(self, reason: str, retry_after: float) -> None:
        self.reason = reason
        self.retry_after = max(1.0, float(retry_after))
        super().__init__(self.in_language("en"))

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after / 60))

    def in_language(self, lang: str) -> str:
        return limit_message(self.reason, self.minutes, lang)


class DeviceBlocked(BillingError):
    """The owner blocked this device: it buys nothing (nobody is charged for nothing)."""

    code = "device_blocked"
    status = 403


@dataclass(frozen=True)
class PushLimits:
    per_device: int = 5
    per_phone: int = 5
    window: float = 3600.0
    cancel_limit: int = 3
    cancel_cooldown: float = 1800.0
    open_per_device: int = 1
    line_max: int = 0  # 0: what the budget can push within the line's longest wait

    @classmethod
    def from_config(cls, limits: Any) -> PushLimits:
        """From the `[limits]` section of the configuration."""
        return cls(per_device=limits.push_per_device, per_phone=limits.push_per_phone,
                   window=float(limits.push_window_seconds), cancel_limit=limits.cancel_limit,
                   cancel_cooldown=float(limits.cancel_cooldown_seconds),
                   open_per_device=limits.open_per_device, line_max=limits.line_max)


# settings key (owner UI) -> PushLimits field
SETTING_FIELDS = {"limits.push_per_device": "per_device", "limits.push_per_phone": "per_phone",
                  "limits.push_window_seconds": "window", "limits.cancel_limit": "cancel_limit",
                  "limits.cancel_cooldown_seconds": "cancel_cooldown",
                  "limits.open_per_device": "open_per_device", "limits.line_max": "line_max"}
_FLOATS = {f.name for f in fields(PushLimits) if f.type == "float"}


def with_stored_settings(conn: sqlite3.Connection, limits: PushLimits) -> PushLimits:
    """`limits` with the owner's stored settings applied (already checked when saved)."""
    rows = conn.execute("SELECT key, value FROM settings WHERE key LIKE 'limits.%'").fetchall()
    changes = {SETTING_FIELDS[key]: json.loads(value) for key, value in rows
               if key in SETTING_FIELDS}
    for name in _FLOATS & set(changes):
        changes[name] = float(changes[name])
    return replace(limits, **changes) if changes else limits


@dataclass(frozen=True)
class PushTimes:
    """How long things take now: a place in line, the line's and a prompt's longest wait."""

    seconds_per_place: float = 1.2
    queue_max_wait: float = 300.0
    pending_expiry: float = 180.0
    margin: float = 10.0  # the reconciler's round and the query that ends a payment

    def line_cap(self, line_max: int) -> int:
        return line_max or max(1, int(self.queue_max_wait / self.seconds_per_place))


def device_blocked(conn: sqlite3.Connection, mac: str) -> bool:
    return conn.execute("SELECT 1 FROM blocked_macs WHERE mac = ?", (mac,)).fetchone() is not None


class PushGuard:
    def __init__(self, db: Database, limits: PushLimits,
                 now: Callable[[], float] = time.time) -> None:
        self._db = db
        self._limits = limits
        self._now = now

    @property
    def limits(self) -> PushLimits:
        """The limits in force now: configured, with the owner's settings over them."""
        return with_stored_settings(self._db.connection(), self._limits)

    def check(self, *, mac: str, phone: str, ip: str | None = None,
              plan_id: int | None = None, times: PushTimes | None = None,
              pushing: int = 0) -> int | None:
        """May `mac` at `ip` start a purchase of `plan_id` prompting `phone`? None: yes. The
        id of an open purchase with the same plan and number: that one, again. Otherwise
        raises PushLimited. Counts nothing: the stored purchases are the count, so the
        caller checks and stores under one lock. `pushing`: purchases trying their push
        right now (each joins the line if no slot comes), counted as in line.

        The device limits hold for its address as well: an address holds one device at a
        time, so a client that changes its MAC and keeps its address stays one device."""
        conn, now, limits = self._db.connection(), self._now(), self.limits
        times = times or PushTimes()
        open_ones = _open_purchases(conn, mac, ip)
        for row in open_ones:
            if (row["mac"], row["plan_id"], row["phone"]) == (mac, plan_id, phone):
                return int(row["id"])
        if len(open_ones) >= limits.open_per_device:
            raise PushLimited("open", min(_ends(row, times) for row in open_ones) - now)
        device = _unpaid(conn, "mac", mac, now - limits.window)
        _over("device", device, limits.per_device, limits.window, now)
        if ip:
            address = _unpaid(conn, "ip", ip, now - limits.window)
            _over("device", address, limits.per_device, limits.window, now)
        ignored = _ignored(conn, phone, now - limits.cancel_cooldown)
        _over("cooldown", ignored, limits.cancel_limit, limits.cancel_cooldown, now)
        _over("phone", _unpaid(conn, "phone", phone, now - limits.window), limits.per_phone,
              limits.window, now)
        waiting, cap = queue_length(conn) + pushing, times.line_cap(limits.line_max)
        if waiting >= cap:
            raise PushLimited("line", (waiting - cap + 1) * times.seconds_per_place)
        return None


def _open_purchases(conn: sqlite3.Connection, mac: str, ip: str | None) -> list[sqlite3.Row]:
    """The open (pending) purchases of this device or made from its address, newest first."""
    return conn.execute(
        "SELECT id, mac, plan_id, phone, created_at, queued_at, push_sent_at FROM payments"
        " WHERE (mac = ? OR (ip = ? AND ip IS NOT NULL)) AND status = ? ORDER BY id DESC",
        (mac, ip, PENDING)).fetchall()


def _ends(row: sqlite3.Row, times: PushTimes) -> float:
    """When an open purchase ends at the latest: its prompt's wait, after the line's if
    its push has not gone out yet."""
    if row["queued_at"] is not None or row["push_sent_at"] is None:
        return row["created_at"] + times.queue_max_wait + times.pending_expiry + times.margin
    return row["push_sent_at"] + times.pending_expiry + times.margin


def _unpaid(conn: sqlite3.Connection, column: str, value: str, since: float) -> list[float]:
    """When each unpaid purchase of this device or number since `since` began, newest first
    (paid ones and ones that ended in line, never pushed, do not count)."""
    assert column in ("mac", "phone", "ip")
    return [row[0] for row in conn.execute(
        f"SELECT created_at FROM payments WHERE {column} = ? AND created_at > ? AND"
        " status != 'completed' AND COALESCE(settled_by, '') != ? ORDER BY created_at DESC",
        (value, since, QUEUE_ENDING))]


def _ignored(conn: sqlite3.Connection, phone: str, since: float) -> list[float]:
    """When each prompt this number cancelled or left unanswered since `since` ended."""
    marks = ",".join("?" * len(IGNORED_CODES))
    # created_at bounds the index range: a payment ends within its line's and its
    # prompt's longest waits (minutes) of being created.
    return [row[0] for row in conn.execute(
        f"SELECT settled_at FROM payments WHERE phone = ? AND created_at > ? AND"
        f" settled_at > ? AND result_code IN ({marks}) ORDER BY settled_at DESC",
        (phone, since - 3600.0, since, *IGNORED_CODES))]


def _over(reason: str, times: Sequence[float], limit: int, window: float, now: float) -> None:
    """Refuse when `limit` events (newest first) fall within the window: until the
    limit-th newest leaves it."""
    if len(times) >= limit:
        raise PushLimited(reason, times[limit - 1] + window - now)
