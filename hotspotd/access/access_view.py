"""An in-memory view of who may log in, so the RADIUS thread answers without SQL.

Kept current from the writers' own change feed: every grant, revocation and block queues a
router operation (`router_ops`) in the same transaction, so new `router_ops` rows name the
devices whose entitlement changed. A background thread reads that feed every
`poll_interval` (an indexed read by id) and reloads those devices; everything is reloaded
every `full_interval` as a safety net.

The full reload builds the new map in chunks of rows and lets go of the GIL between them:
a thread holding the GIL makes one that wants it wait the interpreter's switch interval
(5 ms), so one 10,000-row build in a go would hold every Access-Request arriving meanwhile
for 5 ms at a time; a chunk takes about a millisecond.

Only "yes, with this much time" is answered from the view. A device the view does not know,
or knows as expired or blocked, is looked up in the database by the caller, so a grant
committed a moment ago is never refused because the view has not caught up.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import NamedTuple

from hotspotd.store.db import Database

log = logging.getLogger(__name__)

_CHUNK = 500  # rows built between two yields of the GIL (see the module docstring)
_SELECT = ("SELECT e.mac, e.expires_at, e.rate_limit, e.data_cap_bytes,"
           " e.idle_timeout_seconds FROM entitlements e")


class Allowance(NamedTuple):  # a tuple: 10,000 of them are built at every full reload
    expires_at: float
    rate_limit: str | None
    data_cap_bytes: int | None  # non-None: capped, the policy works out what is left
    idle_timeout: int | None


class AccessView:
    """MAC → Allowance for entitled devices, minus blocked ones; see the module docstring."""

    def __init__(self, db: Database, *, poll_interval: float = 0.25,
                 full_interval: float = 30.0) -> None:
        self._db = db
        self._poll_interval = poll_interval
        self._full_interval = full_interval
        self._allowances: dict[str, Allowance] = {}
        self._blocked: frozenset[str] = frozenset()
        self._last_op_id = 0
        self._refreshing = threading.Lock()  # the view's thread and the router outbox
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def get(self, mac: str) -> Allowance | None:
        """The device's allowance if the view knows it as entitled and not blocked."""
        if mac in self._blocked:
            return None
        return self._allowances.get(mac)

    def start(self) -> AccessView:
        self.reload_all()
        self._thread = threading.Thread(target=self._run, name="access-view", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def reload_all(self) -> None:
        with self._refreshing:
            self._reload_all()

    def _reload_all(self) -> None:
        conn = self._db.connection()
        last = conn.execute("SELECT COALESCE(MAX(id), 0) FROM router_ops").fetchone()[0]
        cursor = conn.execute(_SELECT)
        allowances: dict[str, Allowance] = {}
        while rows := cursor.fetchmany(_CHUNK):
            for mac, expires_at, rate_limit, data_cap, idle_timeout in rows:
                allowances[mac] = Allowance(expires_at, rate_limit, data_cap, idle_timeout)
            time.sleep(0)  # let a waiting RADIUS thread have the GIL now, not in 5 ms
        self._allowances = allowances
        self._blocked = frozenset(r[0] for r in conn.execute("SELECT mac FROM blocked_macs"))
        self._last_op_id = last

    def refresh_changed(self) -> int:
        """Reload the devices named by router operations queued since the last look."""
        with self._refreshing:
            return self._refresh_changed()

    def _refresh_changed(self) -> int:
        conn = self._db.connection()
        rows = conn.execute("SELECT id, mac FROM router_ops WHERE id > ? ORDER BY id",
                            (self._last_op_id,)).fetchall()
        if not rows:
            return 0
        macs = {row[1] for row in rows}
        for mac in macs:
            row = conn.execute(_SELECT + " WHERE e.mac = ?", (mac,)).fetchone()
            if row is None:
                self._allowances.pop(mac, None)
            else:
                self._allowances[mac] = Allowance(row[1], row[2], row[3], row[4])
        self._blocked = frozenset(r[0] for r in conn.execute("SELECT mac FROM blocked_macs"))
        self._last_op_id = rows[-1][0]
        return len(macs)

    def _run(self) -> None:
        next_full = time.monotonic() + self._full_interval
        while not self._stopping.wait(self._poll_interval):
            try:
                if time.monotonic() >= next_full:
                    next_full = time.monotonic() + self._full_interval
                    self.reload_all()
                else:
                    self.refresh_changed()
            except Exception:  # keep the view alive; the database stays the fallback
                log.exception("access view refresh failed")
