"""C2B confirmations from sources that are not trusted are checked with Daraja first.

Anyone who learns a channel's callback path could post a confirmation for a TransID that
never happened. So, like an STK callback is confirmed by STK Query, a confirmation from a
source outside `[daraja] callback_allowlist` only waits in `c2b_unverified` (Daraja still
gets its acknowledgement at once) until Pull Transactions of the same channel answers:

- Pull lists the TransID: it is recorded through `c2b.record_c2b` with Pull's amount and
  account number (not the claimed ones), so it grants, settles or is held exactly as a
  trusted confirmation would; `confirmed`.
- Pull answered but never listed it within `[c2b] verify_within_seconds`: `rejected`,
  nothing granted, stored in `callback_rejections` with why (Pull can lag, so it is asked
  again on a backoff first).
- Daraja could not be asked at all in that time: `held` as unmatched money for the owner,
  with the reason — never granted, never dropped.

Trusted (allow-listed) sources are recorded directly, as before. Transaction Status would
answer for one TransID, but needs an initiator credential this appliance does not hold and
the reference digest does not cover it; Pull is what every channel here already has.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from hotspotd.daraja.budget import BudgetExhausted
from hotspotd.daraja.errors import DarajaError
from hotspotd.ledger import unmatched
from hotspotd.mpesa.c2b import C2BPayment, MalformedC2B, pull_row_to_c2b, record_c2b
from hotspotd.mpesa.pull import ChannelPulls
from hotspotd.mpesa.rejections import record_rejection
from hotspotd.store.db import Database

log = logging.getLogger(__name__)

CHECK_DELAYS = (1.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)  # between Pull checks; last repeats
LOOKBACK = 3600.0  # the Pull window starts this long before the confirmation arrived
END_MARGIN = 60.0


class C2BVerifier:
    def __init__(self, db: Database, pulls: ChannelPulls, *,
                 schedule: Callable[[float, Callable[[], None]], None], within: float,
                 on_grant: Callable[[], None] = lambda: None,
                 now: Callable[[], float] = time.time) -> None:
        self._db = db
        self._pulls = pulls
        self._schedule = schedule
        self._within = within
        self._on_grant = on_grant
        self._now = now
        self._running = threading.Lock()  # one check at a time
        self._plan_lock = threading.Lock()
        self._planned: float | None = None  # when the next check is scheduled

    def hold(self, payment: C2BPayment, *, channel: str, source: str) -> str:
        """Keep an untrusted confirmation until Pull confirms it: `verifying`, or
        `duplicate` when this TransID is already recorded or waiting."""
        now = self._now()
        with self._db.write() as conn:
            if conn.execute("SELECT 1 FROM c2b_transactions WHERE trans_id = ?",
                            (payment.trans_id,)).fetchone():
                return "duplicate"
            added = conn.execute(
                "INSERT OR IGNORE INTO c2b_unverified (trans_id, channel, source, amount,"
                " bill_ref, trans_time, shortcode, received_at, next_check_at) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (payment.trans_id, channel, source, str(payment.amount), payment.bill_ref,
                 payment.trans_time, payment.shortcode, now, now)).rowcount
        if not added:
            return "duplicate"
        log.info("C2B %s from %s (channel %s): waiting for Pull Transactions to confirm it",
                 payment.trans_id, source, channel)
        self._plan(0.0)
        return "verifying"

    def _plan(self, delay: float) -> None:
        """Schedule a check in `delay` s unless one is already due by then."""
        at = self._now() + delay
        with self._plan_lock:
            if self._planned is not None and self._planned <= at + 0.05:
                return
            self._planned = at
        self._schedule(delay, self._planned_check)

    def _planned_check(self) -> None:
        with self._plan_lock:
            self._planned = None
        self.verify_due()

    def verify_due(self) -> int:
        """Check every confirmation that is due, one Pull query per channel; returns how
        many were decided. Schedules itself again while any is still waiting."""
        if not self._running.acquire(blocking=False):
            return 0  # a check is running; it schedules the next one
        try:
            decided = self._verify_due()
        finally:
            self._running.release()
        waiting = self._db.query_one("SELECT MIN(next_check_at) FROM c2b_unverified WHERE"
                                     " state = 'pending'")[0]
        if waiting is not None:
            self._plan(max(0.2, waiting - self._now()))
        return decided

    def _verify_due(self) -> int:
        now = self._now()
        due = self._db.query("SELECT * FROM c2b_unverified WHERE state = 'pending' AND"
                             " next_check_at <= ? ORDER BY received_at", (now,))
        by_channel: dict[str, list[sqlite3.Row]] = {}
        for row in due:
            by_channel.setdefault(row["channel"], []).append(row)
        decided = 0
        for channel, rows in by_channel.items():
            listed, error = self._pull(channel, min(r["received_at"] for r in rows), now)
            decided += sum(self._decide(row, listed, error, now) for row in rows)
        return decided

    def _pull(self, channel: str, since: float,
              now: float) -> tuple[dict[str, dict[str, Any]] | None, str]:
        """Pull's rows by TransID, or (None, why Daraja could not be asked)."""
        try:
            rows = self._pulls.service(channel).transactions(since - LOOKBACK, now + END_MARGIN)
        except BudgetExhausted:
            return None, "the Daraja request budget was taken"
        except DarajaError as exc:
            log.warning("C2B verification (channel %s): Pull failed: %s", channel, exc)
            return None, str(exc)
        return {str(row.get("transactionId", "")).upper(): row for row in rows}, ""

    def _decide(self, row: sqlite3.Row, listed: dict[str, dict[str, Any]] | None,
                error: str, now: float) -> int:
        trans_id = row["trans_id"]
        known = self._db.query_one("SELECT source, outcome FROM c2b_transactions WHERE"
                                   " trans_id = ?", (trans_id,))
        if known is not None:  # the Pull job (or a trusted copy) recorded it meanwhile
            self._finish(row, "confirmed", f"recorded by {known['source']}: {known['outcome']}",
                         now)
            return 1
        if listed is not None and trans_id in listed:
            return self._confirm(row, listed[trans_id], now)
        checks, answered = row["checks"] + 1, row["answered"] + (listed is not None)
        if now - row["received_at"] < self._within:
            delay = CHECK_DELAYS[min(checks - 1, len(CHECK_DELAYS) - 1)]
            with self._db.write() as conn:
                conn.execute("UPDATE c2b_unverified SET checks = ?, answered = ?,"
                             " next_check_at = ? WHERE trans_id = ? AND state = 'pending'",
                             (checks, answered, now + delay, trans_id))
            return 0
        if answered:
            self._reject(row, checks, now)
        else:
            self._hold_for_owner(row, error, now)
        return 1

    def _confirm(self, row: sqlite3.Row, pull_row: dict[str, Any], now: float) -> int:
        try:
            real = pull_row_to_c2b(pull_row)
        except MalformedC2B as exc:
            log.warning("C2B %s: Pull row unreadable (%s); asking again later",
                        row["trans_id"], exc)
            return 0
        outcome = record_c2b(self._db, real, source="confirmation", now=now,
                             channel=row["channel"])
        claimed = (row["amount"], row["bill_ref"] or "")
        actual = (str(real.amount), real.bill_ref)
        note = "" if _same(claimed, actual) else (
            f"; the confirmation claimed KES {claimed[0]} account {claimed[1]!r}, Pull says"
            f" KES {actual[0]} account {actual[1]!r} (Pull's kept)")
        self._finish(row, "confirmed", f"listed by Pull Transactions: {outcome.outcome}{note}",
                     now)
        if note:
            record_rejection(self._db, kind="c2b-confirmation", now=now,
                             channel=row["channel"], source=row["source"],
                             reference=row["trans_id"], reason="claimed values" + note)
        if outcome.granted:
            self._on_grant()
        return 1

    def _reject(self, row: sqlite3.Row, checks: int, now: float) -> None:
        reason = (f"Pull Transactions of channel {row['channel']} does not list TransID"
                  f" {row['trans_id']} ({checks} checks over {int(now - row['received_at'])}"
                  f" s): not a payment Daraja knows; nothing granted")
        self._finish(row, "rejected", reason, now)
        record_rejection(self._db, kind="c2b-confirmation", now=now, channel=row["channel"],
                         source=row["source"], reference=row["trans_id"], reason=reason,
                         body={"TransAmount": row["amount"], "BillRefNumber": row["bill_ref"]})
        log.warning("C2B confirmation %s from %s rejected: %s", row["trans_id"], row["source"],
                    reason)

    def _hold_for_owner(self, row: sqlite3.Row, error: str, now: float) -> None:
        reason = (f"C2B confirmation from an untrusted source ({row['source']}) that could not"
                  f" be checked with Daraja ({error}); not granted, check it in M-Pesa")
        with self._db.write() as conn:
            unmatched.hold(conn, unmatched.Held("c2b", row["bill_ref"], row["trans_id"],
                                                _shillings(row["amount"]), reason),
                           now=now, event="c2b.unverified_held")
            _finish_in(conn, row["trans_id"], "held", reason, now)

    def _finish(self, row: sqlite3.Row, state: str, reason: str, now: float) -> None:
        with self._db.write() as conn:
            _finish_in(conn, row["trans_id"], state, reason, now)


def _finish_in(conn: sqlite3.Connection, trans_id: str, state: str, reason: str,
               now: float) -> None:
    conn.execute("UPDATE c2b_unverified SET state = ?, reason = ?, decided_at = ? WHERE"
                 " trans_id = ? AND state = 'pending'", (state, reason, now, trans_id))


def _same(claimed: tuple[str, str], actual: tuple[str, str]) -> bool:
    try:
        same_amount = float(claimed[0]) == float(actual[0])
    except ValueError:
        return False
    return same_amount and claimed[1].strip().upper() == actual[1].strip().upper()


def _shillings(amount: str) -> int | None:
    try:
        return int(float(amount))
    except ValueError:
        return None
