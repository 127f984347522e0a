"""What the RADIUS server asks the billing core: may this device in, for how long, at what rate;
and what the router reports about sessions (accounting).

Answers come from one indexed read (entitlement joined with its plan and the owner's block
list); nothing here touches the network. The RADIUS server runs authentication and
accounting on separate threads, so accounting writes never hold up an Access-Request.

User-Name is either the device's MAC or a voucher code typed on the router's login page.

- A MAC login names the device itself: User-Name must be the MAC in Calling-Station-Id
  (which the router fills in from the frame), compared normalised; a paid MAC typed on
  another device's login page, or a request without Calling-Station-Id, is refused. The
  password is the shared MAC-login password (the router's own MAC authentication and the
  daemon's API logins) or the device's own `device_password`, derived from it, which the
  portal's fallback login form carries: knowing one device's credential gives nothing
  for any other.
- A voucher code: an unused voucher is redeemed on its first Access-Request for the MAC in
  Calling-Station-Id (answered at once, written by a worker: see voucher_logins.py); later
  logins of that device with the same code are accepted by its entitlement, like any paid
  device. Wrong codes are limited per device (`VoucherGuesses`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import sqlite3
import time
from collections.abc import Callable

from hotspotd.access.access_view import AccessView
from hotspotd.access.voucher_logins import VoucherGuesses, VoucherLogins
from hotspotd.ledger import vouchers
from hotspotd.ledger.data_usage import bytes_left
from hotspotd.ledger.payments import device_seen_at
from hotspotd.macs import normalise_mac
from hotspotd.radius.server import AccessDecision, AccessRequest, AccountingRecord
from hotspotd.store.db import Database

log = logging.getLogger(__name__)

NO_TIME = "No time left on this device. Open the portal to buy a plan."
BAD_PASSWORD = "Login refused."
UNKNOWN_USER = "Unknown voucher or user."
BLOCKED = "This device is not allowed on this hotspot."
NOT_THIS_DEVICE = "That login belongs to another device."
TOO_MANY_GUESSES = "Too many wrong voucher codes from this device. Try again in {minutes} min."
VOUCHER_OTHER_DEVICE = "That voucher is in use on another device."
DATA_USED_UP = "The data allowance of this plan is used up. Open the portal to buy more."

_DEVICE_LOGIN = b"hotspotd device login "
DEVICE_PASSWORD_LENGTH = 24  # hex digits: 96 bits
_ACCESS_QUERY = (
    "SELECT e.expires_at, e.rate_limit, e.data_cap_bytes, e.idle_timeout_seconds,"
    " (SELECT 1 FROM blocked_macs b WHERE b.mac = ?) AS blocked"
    " FROM (SELECT ? AS mac) AS d"
    " LEFT JOIN entitlements e ON e.mac = d.mac")


class AccessPolicy:
    def __init__(self, db: Database, *, mac_password: str, interim_interval: int,
                 now: Callable[[], float] = time.time, view: AccessView,
                 voucher_attempts: int = 10, attempt_window: float = 900.0) -> None:
        self._db = db
        self._view = view
        self._mac_password = mac_password
        self._interim_interval = interim_interval
        self._now = now
        self.voucher_logins = VoucherLogins(db, now=now)
        self.voucher_guesses = VoucherGuesses(limit=voucher_attempts, window=attempt_window,
                                              now=now)

    def authorize(self, request: AccessRequest) -> AccessDecision:
        """MAC login (User-Name = the device's own MAC) or voucher login (User-Name = code)."""
        mac = _as_mac(request.user_name)
        if mac is not None:
            return self._mac_login(mac, request)
        return self._voucher_login(request)

    def _mac_login(self, mac: str, request: AccessRequest) -> AccessDecision:
        """The device logs in as itself: its own MAC, the shared or its own password."""
        station = request.calling_station_id
        if station != request.user_name and (station is None or _as_mac(station) != mac):
            log.warning("RADIUS: MAC login as %s from device %s refused: not its own MAC",
                        request.user_name, station or "(no Calling-Station-Id)")
            return AccessDecision(accept=False, reply_message=NOT_THIS_DEVICE)
        if not (request.password_matches(self._mac_password) or
                request.password_matches(device_password(self._mac_password, mac))):
            log.warning("RADIUS: wrong MAC-login password for %s from %s",
                        request.user_name, request.nas_address)
            return AccessDecision(accept=False, reply_message=BAD_PASSWORD)
        return self.decision_for(mac)

    def decision_for(self, mac: str) -> AccessDecision:
        """Accept with the time left, rate limit, data cap and idle timeout; else reject.

        An entitled device is answered from the in-memory view when there is one; anything
        else (unknown to the view, expired, blocked) is decided by the database."""
        allowance = self._view.get(mac)
        if allowance is not None:
            seconds = int(allowance.expires_at - self._now())
            if seconds > 0:
                return self._accept(mac, seconds, allowance.rate_limit, allowance.idle_timeout,
                                    allowance.data_cap_bytes)
        row = self._db.connection().execute(_ACCESS_QUERY, (mac, mac)).fetchone()
        if row["blocked"]:
            return AccessDecision(accept=False, reply_message=BLOCKED)
        seconds = int(row["expires_at"] - self._now()) if row["expires_at"] is not None else 0
        if seconds <= 0:
            return AccessDecision(accept=False, reply_message=NO_TIME)
        return self._accept(mac, seconds, row["rate_limit"], row["idle_timeout_seconds"],
                            row["data_cap_bytes"])

    def _accept(self, mac: str, seconds: int, rate_limit: str | None,
                idle_timeout: int | None, capped: int | None) -> AccessDecision:
        """Accept; a capped device gets what is left of its data (two indexed reads), since
        the router's own counters start again with every session and every reboot."""
        left = bytes_left(self._db.connection(), mac, self._now()) if capped else None
        if left is not None and left <= 0:
            return AccessDecision(accept=False, reply_message=DATA_USED_UP)
        return AccessDecision(accept=True, session_timeout=seconds, rate_limit=rate_limit,
                              idle_timeout=idle_timeout, total_limit_bytes=left)

    def _voucher_login(self, request: AccessRequest) -> AccessDecision:
        """A code typed on the router's login page; wrong ones counted per device."""
        code = vouchers.normalise_code(request.user_name)
        station = request.calling_station_id
        mac = _as_mac(station) if station else None
        if not code or mac is None:
            return AccessDecision(accept=False, reply_message=UNKNOWN_USER)
        wait = self.voucher_guesses.retry_after(mac, request.framed_ip)
        if wait > 0:
            return AccessDecision(accept=False, reply_message=TOO_MANY_GUESSES.format(
                minutes=max(1, math.ceil(wait / 60))))
        decision = self._voucher_decision(code, mac, request)
        if not decision.accept and decision.reply_message in _GUESS_FAILURES:
            self.voucher_guesses.failed(mac, request.framed_ip)
        return decision

    def _voucher_decision(self, code: str, mac: str, request: AccessRequest) -> AccessDecision:
        voucher = vouchers.find_voucher(self._db.connection(), code)
        if voucher is None or voucher.status == "void":
            return AccessDecision(accept=False, reply_message=UNKNOWN_USER)
        # The router's login form sends the code as password too, or nothing.
        if not (request.password_matches(request.user_name) or request.password_matches(code)
                or request.password_matches("")):
            return AccessDecision(accept=False, reply_message=BAD_PASSWORD)
        if voucher.status == "unused":
            return self._first_login(voucher, mac, request.framed_ip)
        if voucher.used_by_mac != mac:
            return AccessDecision(accept=False, reply_message=VOUCHER_OTHER_DEVICE)
        return self.decision_for(mac)

    def _first_login(self, voucher: vouchers.Voucher, mac: str,
                     ip: str | None) -> AccessDecision:
        """Accept with what the redemption will grant; the write happens off this thread
        (see voucher_logins.py). Checks are the ones `vouchers.redeem` makes."""
        current = self.decision_for(mac)
        if current.reply_message == BLOCKED:
            return current
        now = self._now()
        if voucher.valid_until is not None and now > voucher.valid_until:
            return AccessDecision(accept=False, reply_message="That voucher has expired.")
        plan = self._db.connection().execute(
            "SELECT duration_seconds, rate_limit, data_cap_bytes, idle_timeout_seconds"
            " FROM plans WHERE id = ?", (voucher.plan_id,)).fetchone()
        if plan is None:
            return AccessDecision(accept=False, reply_message=UNKNOWN_USER)
        if not self.voucher_logins.claim(voucher.code, mac, ip):
            return AccessDecision(accept=False, reply_message=VOUCHER_OTHER_DEVICE)
        paid = (current.session_timeout or 0) if current.accept else 0
        data = plan["data_cap_bytes"]  # what the redemption adds (see data_usage.py)
        if data and current.accept:
            data = None if current.total_limit_bytes is None else \
                data + current.total_limit_bytes
        return AccessDecision(accept=True, session_timeout=paid + plan["duration_seconds"],
                              rate_limit=plan["rate_limit"],
                              idle_timeout=plan["idle_timeout_seconds"],
                              total_limit_bytes=data)

    def stop(self) -> None:
        """Write the voucher redemptions still queued."""
        self.voucher_logins.stop()

    def record_accounting(self, record: AccountingRecord) -> None:
        now = self._now()
        if record.status_type in ("Accounting-On", "Accounting-Off"):
            self._close_nas_sessions(record.nas_address, now)  # the NAS (re)booted
            return
        status = {"Start": "online", "Interim-Update": "online", "Stop": "stopped"}.get(
            record.status_type)
        if status is None:
            log.info("RADIUS accounting %s for session %s from %s: nothing to record",
                     record.status_type, record.session_id, record.nas_address)
            return
        mac = _mac_of(record)
        with self._db.write() as conn:
            _upsert_session(conn, record, mac, status, now)
            if mac and record.framed_ip:
                device_seen_at(conn, mac, record.framed_ip, now)

    def _close_nas_sessions(self, nas_address: str, now: float) -> None:
        with self._db.write() as conn:
            conn.execute("UPDATE radius_sessions SET status = 'stopped', stopped_at = ?,"
                         " terminate_cause = 'NAS-Reboot' WHERE nas_address = ?"
                         " AND status = 'online'", (now, nas_address))


def _upsert_session(conn: sqlite3.Connection, record: AccountingRecord, mac: str | None,
                    status: str, now: float) -> None:
    """One row per (NAS, Acct-Session-Id); counters only grow; a Stop is final."""
    stopped = now if status == "stopped" else None
    conn.execute(
        "INSERT INTO radius_sessions (session_id, nas_address, mac, user_name, framed_ip,"
        " status, started_at, updated_at, stopped_at, session_time, input_octets,"
        " output_octets, input_packets, output_packets, terminate_cause)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (nas_address, session_id) DO UPDATE SET"
        " status = CASE WHEN status = 'stopped' THEN status ELSE excluded.status END,"
        " updated_at = excluded.updated_at,"
        " framed_ip = COALESCE(excluded.framed_ip, framed_ip),"
        " stopped_at = COALESCE(stopped_at, excluded.stopped_at),"
        " session_time = MAX(COALESCE(session_time, 0), COALESCE(excluded.session_time, 0)),"
        " input_octets = MAX(input_octets, excluded.input_octets),"
        " output_octets = MAX(output_octets, excluded.output_octets),"
        " input_packets = MAX(input_packets, excluded.input_packets),"
        " output_packets = MAX(output_packets, excluded.output_packets),"
        " terminate_cause = COALESCE(excluded.terminate_cause, terminate_cause)",
        (record.session_id, record.nas_address, mac, record.user_name, record.framed_ip,
         status, now, now, stopped, record.session_time, record.input_octets,
         record.output_octets, record.input_packets, record.output_packets,
         record.terminate_cause))


_GUESS_FAILURES = frozenset({UNKNOWN_USER, BAD_PASSWORD, VOUCHER_OTHER_DEVICE})


def device_password(mac_password: str, mac: str) -> str:
    """The device's own login password: HMAC-SHA256 of its (normalised) MAC under the
    MAC-login password, 24 hex digits. The portal's fallback login form carries it instead
    of the shared password; RADIUS accepts it only in a MAC login of that very device."""
    digest = hmac.new(mac_password.encode(), _DEVICE_LOGIN + normalise_mac(mac).encode(),
                      hashlib.sha256)
    return digest.hexdigest()[:DEVICE_PASSWORD_LENGTH]


def _as_mac(text: str) -> str | None:
    """`text` as a normalised MAC, or None; the router's own form is taken as it is."""
    try:
        return normalise_mac(text)
    except ValueError:
        return None


def _mac_of(record: AccountingRecord) -> str | None:
    for candidate in (record.calling_station_id, record.user_name):
        mac = _as_mac(candidate) if candidate else None
        if mac is not None:
            return mac
    return None
