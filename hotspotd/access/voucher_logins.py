"""Voucher logins over RADIUS: first logins answered at once, the redemption written by a
worker thread; wrong codes limited per device.

A code typed on the router's login page arrives as an Access-Request. Redeeming it is a
write (grant, voucher row, event, router op), and a write can wait for SQLite's lock behind
another writer; the RADIUS thread must never wait. So the auth thread only reads the voucher
(an indexed read), *claims* the code for the calling MAC in memory, answers Accept with the
time the redemption will give, and hands the write to the worker here.

- One claim per code: a second device asking for a claimed code is refused, exactly as it
  would be once the voucher row says `used`; the same device asking again is accepted
  again and the write is not queued twice.
- The database stays the truth. If the write fails (the code was redeemed on the portal by
  another device a moment before, or the daemon stopped before writing), the device is
  online with time the database does not hold: a router op brings it back to its own
  entitlement (`login`) or off (`disconnect`), and the reconcile would find it anyway.
  Nothing is granted that the database does not hold, and a code whose write was lost is
  still unused, so the customer can simply try again.

Guessing codes on the router's login page is limited per device as on the portal
(`[portal] voucher_attempts` per `attempt_window_seconds`; `VoucherGuesses`): counted per
Calling-Station-Id (and, five times wider, per Framed-IP-Address), in memory, so the
RADIUS thread never writes for it. Only failed attempts count (a device's own voucher logs
in again at every session); once over the limit, every voucher login from that device is
refused until its window ends, right codes included, so a guess cannot be confirmed. A
restart forgets the counts (the portal's are in the database and separate).
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from hotspotd.ledger import vouchers
from hotspotd.ledger.grants import get_entitlement
from hotspotd.ledger.router_ops import enqueue_router_op
from hotspotd.store.db import Database

log = logging.getLogger(__name__)

WRITE_RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0)  # seconds between attempts at a locked database
ADDRESS_FACTOR = 5  # the per-address limit is this many times the per-device one (portal's)
MAX_TRACKED = 50_000  # devices and addresses counted at once; the oldest windows go first


@dataclass(frozen=True)
class _Redemption:
    code: str
    mac: str
    ip: str | None
    claimed_at: float


class VoucherLogins:
    """Claims of unused voucher codes by MAC, and the worker that writes them."""

    def __init__(self, db: Database, *, now: Callable[[], float] = time.time) -> None:
        self._db = db
        self._now = now
        self._claims: dict[str, str] = {}  # code -> MAC, until the write is done
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Redemption | None] = queue.Queue()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._thread: threading.Thread | None = None

    def claim(self, code: str, mac: str, ip: str | None) -> bool:
        """Claim `code` for `mac` (auth thread). True if `mac` holds the claim: the first
        claim queues the redemption; False if another device claimed it first."""
        with self._lock:
            holder = self._claims.get(code)
            if holder is not None:
                return holder == mac
            self._claims[code] = mac
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="voucher-logins",
                                                daemon=True)
                self._thread.start()
        self._queue.put(_Redemption(code, mac, ip, self._now()))
        return True

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until every claimed redemption has been written (tests, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the worker."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._write_with_retries(item)
            except Exception:  # the reconcile takes the session back: no time in the database
                log.exception("voucher redemption for %s failed", item.mac)
            finally:
                with self._lock:
                    self._claims.pop(item.code, None)
                    self._pending -= 1
                    self._idle.notify_all()

    def _write_with_retries(self, item: _Redemption) -> None:
        """A locked database (a long writer elsewhere) is waited out, not given up on."""
        for delay in WRITE_RETRY_DELAYS:
            try:
                self._write(item)
                return
            except sqlite3.OperationalError as error:
                log.warning("voucher redemption for %s: %s; retrying in %.0f s", item.mac,
                            error, delay)
                time.sleep(delay)
        self._write(item)

    def _write(self, item: _Redemption) -> None:
        try:
            vouchers.redeem(self._db, code=item.code, mac=item.mac, ip=item.ip,
                            now=item.claimed_at)
            log.info("RADIUS: voucher redeemed by %s", item.mac)
            return
        except vouchers.VoucherUsed:
            used = vouchers.find_voucher(self._db.connection(), item.code)
            if used is not None and used.used_by_mac == item.mac:
                return  # this device redeemed it already (e.g. on the portal)
            reason = "redeemed by another device first"
        except vouchers.VoucherError as error:
            reason = str(error)
        now = self._now()
        with self._db.write() as conn:
            # The router was told "plan duration"; bring it back to what the database holds:
            # the device's own paid time (a login corrects the session), or nothing.
            entitled = get_entitlement(conn, item.mac)
            action = "login" if entitled and entitled.expires_at > now else "disconnect"
            enqueue_router_op(conn, mac=item.mac, ip=item.ip, action=action, now=now)
        log.warning("RADIUS: voucher login of %s accepted but not redeemable (%s); router op"
                    " %s queued", item.mac, reason, action)


class VoucherGuesses:
    """Wrong voucher codes per device (and per address) in fixed windows, in memory."""

    def __init__(self, *, limit: int, window: float,
                 now: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.window = window
        self._now = now
        self._windows: dict[str, list[float]] = {}  # key -> [window start, failures]
        self._lock = threading.Lock()

    def retry_after(self, mac: str, ip: str | None) -> float:
        """Seconds until this device may try a code again; 0 when it may now."""
        now = self._now()
        with self._lock:
            return max(self._wait(key, limit, now) for key, limit in self._keys(mac, ip))

    def failed(self, mac: str, ip: str | None) -> None:
        """Count one wrong code for the device (and its address)."""
        now = self._now()
        with self._lock:
            for key, _ in self._keys(mac, ip):
                entry = self._windows.get(key)
                if entry is None or now - entry[0] >= self.window:
                    self._windows.pop(key, None)  # a new window goes to the end of the order
                    self._make_room()
                    self._windows[key] = [now, 1]
                else:
                    entry[1] += 1

    def _keys(self, mac: str, ip: str | None) -> list[tuple[str, int]]:
        keys = [(f"mac:{mac}", self.limit)]
        if ip:
            keys.append((f"ip:{ip}", self.limit * ADDRESS_FACTOR))
        return keys

    def _wait(self, key: str, limit: int, now: float) -> float:
        entry = self._windows.get(key)
        if entry is None or entry[1] < limit:
            return 0.0
        return max(0.0, entry[0] + self.window - now)

    def _make_room(self) -> None:
        """Forget ended windows, then the oldest, so a flood of new MACs has a bound."""
        if len(self._windows) < MAX_TRACKED:
            return
        now = self._now()
        for key in [k for k, (start, _) in self._windows.items() if now - start >= self.window]:
            del self._windows[key]
        while len(self._windows) >= MAX_TRACKED:
            del self._windows[next(iter(self._windows))]
