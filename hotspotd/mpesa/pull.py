"""Pull Transactions: C2B history fetched from Daraja, for appliances callbacks cannot reach.

Registered once per channel (kept in `pull_state`), then queried on a schedule over the
last 48 hours (at most; from the previous check minus an overlap when there was one). Each
row goes through `c2b.record_c2b`, so rows already seen through a confirmation, an STK
callback or an earlier query change nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from hotspotd.daraja.budget import BudgetExhausted
from hotspotd.daraja.errors import DarajaError
from hotspotd.mpesa.c2b import MalformedC2B, pull_row_to_c2b, record_c2b
from hotspotd.mpesa.channel_clients import ChannelClients
from hotspotd.store.db import Database

log = logging.getLogger(__name__)

WINDOW = 48 * 3600.0
OVERLAP = 3600.0
END_MARGIN = 60.0  # Daraja dates have whole seconds: ask a little past now


class PullGateway(Protocol):
    def pull_register(self, *, nominated_number: str, callback_url: str) -> dict[str, Any]: ...

    def pull_query(self, start: datetime, end: datetime) -> list[dict[str, Any]]: ...


class PullService:
    def __init__(self, db: Database, daraja: PullGateway, *, channel: str, callback_url: str,
                 nominated_number: str, on_grant: Callable[[], None] = lambda: None,
                 now: Callable[[], float] = time.time) -> None:
        self._db = db
        self._daraja = daraja
        self._channel = channel
        self._callback_url = callback_url
        self._nominated_number = nominated_number
        self._on_grant = on_grant
        self._now = now

    def run(self) -> int:
        """Register if needed, then fetch and record; returns the rows newly processed.
        Daraja errors are logged and kept in `pull_state` (the next run tries again)."""
        try:
            self._register_once()
            return self._fetch()
        except BudgetExhausted:
            return 0
        except DarajaError as exc:
            log.warning("Pull Transactions (%s) failed: %s", self._channel, exc)
            self._note(last_error=str(exc))
            return 0

    def transactions(self, start: float, end: float) -> list[dict[str, Any]]:
        """Register if needed, then every Pull row between `start` and `end` (epoch
        seconds). DarajaError and BudgetExhausted reach the caller."""
        self._register_once()
        return self._daraja.pull_query(_utc(start), _utc(end))

    def _state(self) -> dict[str, Any]:
        row = self._db.query_one("SELECT * FROM pull_state WHERE channel = ?", (self._channel,))
        return dict(row) if row else {}

    def _register_once(self) -> None:
        if self._state().get("registered_at"):
            return
        reply = self._daraja.pull_register(nominated_number=self._nominated_number,
                                           callback_url=self._callback_url)
        status = str(reply.get("ResponseStatus", reply.get("ResponseCode", ""))).strip()
        if status not in ("1000", "1001", "0"):
            raise DarajaError(f"Pull registration refused: {status} {reply.get('Response')}")
        log.info("Pull Transactions registered for channel %s (%s)", self._channel, status)
        self._note(registered_at=self._now())

    def _fetch(self) -> int:
        now = self._now()
        checked = self._state().get("checked_at")
        start = now - WINDOW if not checked else max(now - WINDOW, checked - OVERLAP)
        rows = self._daraja.pull_query(_utc(start), _utc(now + END_MARGIN))
        new = 0
        for row in rows:
            try:
                payment = pull_row_to_c2b(row)
            except MalformedC2B as exc:
                log.warning("Pull row ignored: %s", exc)
                continue
            outcome = record_c2b(self._db, payment, source="pull", now=self._now(),
                                 channel=self._channel)
            if outcome.outcome != "duplicate":
                new += 1
            if outcome.granted:
                self._on_grant()
        self._note(checked_at=now, last_error=None)
        return new

    def _note(self, **values: Any) -> None:
        with self._db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO pull_state (channel) VALUES (?)",
                         (self._channel,))
            for name, value in values.items():
                conn.execute(f"UPDATE pull_state SET {name} = ? WHERE channel = ?",
                             (value, self._channel))


class ChannelPulls:
    """Pull Transactions for every channel ("default" and each stored one), each with its
    own credentials, registration and `pull_state` row; one channel's failure does not stop
    the others."""

    def __init__(self, db: Database, channels: ChannelClients, *, nominated_number: str,
                 on_grant: Callable[[], None] = lambda: None,
                 now: Callable[[], float] = time.time) -> None:
        self._db = db
        self._channels = channels
        self._nominated_number = nominated_number
        self._on_grant = on_grant
        self._now = now

    def run(self) -> int:
        """Every channel's Pull run; returns the rows newly processed over all of them."""
        total = 0
        for name in self._channels.names():
            try:
                service = self.service(name)
            except DarajaError as exc:
                log.warning("Pull Transactions (%s) skipped: %s", name, exc)
                continue
            total += service.run()
        return total

    def service(self, name: str) -> PullService:
        """The Pull service of one channel (ChannelUnavailable if the channel is gone)."""
        endpoint = self._channels.endpoint(name)
        return PullService(self._db, endpoint.client, channel=name,
                           callback_url=endpoint.urls["confirmation"],
                           nominated_number=self._nominated_number,
                           on_grant=self._on_grant, now=self._now)


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
