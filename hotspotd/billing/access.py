"""What the RADIUS server asks the billing core: may this device in, for how long, at what rate;
and what the router reports about sessions (accounting).

Answers come from one indexed read of `entitlements`; nothing here touches the network.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from hotspotd.billing.grants import get_entitlement
from hotspotd.billing.macs import looks_like_mac, normalise_mac
from hotspotd.radius.server import AccessDecision, AccessRequest, AccountingRecord
from hotspotd.store.db import Database

log = logging.getLogger(__name__)

NO_TIME = "No time left on this device. Open the portal to buy a plan."
BAD_PASSWORD = "Login refused."
UNKNOWN_USER = "Unknown voucher or user."


class AccessPolicy:
    def __init__(self, db: Database, *, mac_password: str, interim_interval: int,
                 now: Callable[[], float] = time.time) -> None:
        self._db = db
        self._mac_password = mac_password
        self._interim_interval = interim_interval
        self._now = now

    def authorize(self, request: AccessRequest) -> AccessDecision:
        """MAC login: User-Name is the device's MAC and the password is the shared MAC password.

        Vouchers (a code as User-Name) will plug in here; until then anything that is not a
        MAC is refused with a clear Reply-Message.
        """
        if not looks_like_mac(request.user_name):
            return AccessDecision(accept=False, reply_message=UNKNOWN_USER)
        if not request.password_matches(self._mac_password):
            log.warning("RADIUS: wrong MAC-login password for %s from %s", request.user_name,
                        request.nas_address)
            return AccessDecision(accept=False, reply_message=BAD_PASSWORD)
        mac = normalise_mac(request.user_name)
        entitlement = get_entitlement(self._db.connection(), mac)
        seconds = entitlement.seconds_remaining(self._now()) if entitlement else 0
        if seconds <= 0:
            return AccessDecision(accept=False, reply_message=NO_TIME)
        return AccessDecision(accept=True, session_timeout=seconds,
                              rate_limit=entitlement.rate_limit if entitlement else None)

    def record_accounting(self, record: AccountingRecord) -> None:
        mac = _mac_of(record)
        now = self._now()
        stopped = now if record.status_type == "Stop" else None
        status = {"Start": "online", "Interim-Update": "online", "Stop": "stopped"}.get(
            record.status_type)
        if record.status_type in ("Accounting-On", "Accounting-Off"):
            self._close_nas_sessions(record.nas_address, now)  # the NAS (re)booted
            return
        if status is None:
            log.info("RADIUS accounting %s for session %s from %s: nothing to record",
                     record.status_type, record.session_id, record.nas_address)
            return
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO radius_sessions (session_id, nas_address, mac, user_name, framed_ip,"
                " status, started_at, updated_at, stopped_at, session_time, input_octets,"
                " output_octets, input_packets, output_packets, terminate_cause)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (nas_address, session_id) DO UPDATE SET"
                " status = CASE WHEN status = 'stopped' THEN status ELSE excluded.status END,"
                " updated_at = excluded.updated_at,"
                " stopped_at = COALESCE(stopped_at, excluded.stopped_at),"
                " session_time = MAX(COALESCE(session_time, 0),"
                " COALESCE(excluded.session_time, 0)),"
                " input_octets = MAX(input_octets, excluded.input_octets),"
                " output_octets = MAX(output_octets, excluded.output_octets),"
                " input_packets = MAX(input_packets, excluded.input_packets),"
                " output_packets = MAX(output_packets, excluded.output_packets),"
                " terminate_cause = COALESCE(excluded.terminate_cause, terminate_cause)",
                (record.session_id, record.nas_address, mac, record.user_name, record.framed_ip,
                 status, now, now, stopped, record.session_time, record.input_octets,
                 record.output_octets, record.input_packets, record.output_packets,
                 record.terminate_cause))
            if mac and record.framed_ip:
                conn.execute("UPDATE devices SET last_ip = ?, last_seen = ? WHERE mac = ?",
                             (record.framed_ip, now, mac))

    def _close_nas_sessions(self, nas_address: str, now: float) -> None:
        with self._db.write() as conn:
            conn.execute("UPDATE radius_sessions SET status = 'stopped', stopped_at = ?,"
                         " terminate_cause = 'NAS-Reboot' WHERE nas_address = ?"
                         " AND status = 'online'", (now, nas_address))


def _mac_of(record: AccountingRecord) -> str | None:
    for candidate in (record.calling_station_id, record.user_name):
        if candidate and looks_like_mac(candidate):
            return normalise_mac(candidate)
    return None
