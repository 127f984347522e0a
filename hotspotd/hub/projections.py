"""Fold journal events into the hub's projection tables (latest state per appliance row).

Each event carries the whole row as the appliance's trigger saw it, so a projection is an
upsert of that row: applied in seq order, the newest state wins, and applying an event
again changes nothing (the stream is exactly-once anyway; this keeps a rebuild simple).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

Event = dict[str, Any]

_PAYMENT = ("INSERT INTO payments (appliance_id, local_id, public_id, plan_id, mac,"
            " phone_masked, amount, status, result_code, receipt, paid_amount, channel,"
            " created_at, settled_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s) ON CONFLICT (appliance_id, local_id) DO UPDATE SET"
            " status = EXCLUDED.status, result_code = EXCLUDED.result_code,"
            " receipt = EXCLUDED.receipt, paid_amount = EXCLUDED.paid_amount,"
            " settled_at = EXCLUDED.settled_at")
_GRANT = ("INSERT INTO grants (appliance_id, local_id, mac, plan_id, payment_id, voucher_id,"
          " receipt, source, seconds, starts_at, expires_at, created_at) VALUES (%s, %s, %s,"
          " %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING")
_VOUCHER = ("INSERT INTO vouchers (appliance_id, local_id, code, plan_id, batch, status,"
            " created_at, valid_until, used_at, used_by_mac, claim_id, plan_name, seconds,"
            " rate_limit, data_cap_bytes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s, %s) ON CONFLICT (appliance_id, local_id) DO UPDATE SET"
            " status = EXCLUDED.status, used_at = EXCLUDED.used_at,"
            " used_by_mac = EXCLUDED.used_by_mac, claim_id = EXCLUDED.claim_id,"
            " plan_name = COALESCE(EXCLUDED.plan_name, vouchers.plan_name),"
            " seconds = COALESCE(EXCLUDED.seconds, vouchers.seconds),"
            " rate_limit = COALESCE(EXCLUDED.rate_limit, vouchers.rate_limit),"
            " data_cap_bytes = COALESCE(EXCLUDED.data_cap_bytes, vouchers.data_cap_bytes)")
# A voucher the home venue used itself while another venue had claimed it at the hub.
_CONFLICT = ("INSERT INTO voucher_conflicts (claim_id, home_used_by_mac, home_used_at,"
             " found_at) SELECT c.id, %s, %s, %s FROM voucher_claims c"
             " WHERE c.home_appliance_id = %s AND c.voucher_local_id = %s"
             " AND c.claimed_by <> c.home_appliance_id ON CONFLICT (claim_id) DO NOTHING")
_DEVICE = ("INSERT INTO devices (appliance_id, mac, first_seen) VALUES (%s, %s, %s)"
           " ON CONFLICT DO NOTHING")
_UNMATCHED = ("INSERT INTO unmatched_payments (appliance_id, local_id, source, receipt, amount,"
              " phone_masked, reason, received_at, resolved_at) VALUES (%s, %s, %s, %s, %s,"
              " %s, %s, %s, %s) ON CONFLICT (appliance_id, local_id) DO UPDATE SET"
              " resolved_at = EXCLUDED.resolved_at")
_HEALTH = ("INSERT INTO health (appliance_id, seq, at, devices_online, sessions_online,"
           " payments_waiting, unmatched_open, outbox_depth, journal_depth, version, body)"
           " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (appliance_id)"
           " DO UPDATE SET seq = EXCLUDED.seq, at = EXCLUDED.at,"
           " devices_online = EXCLUDED.devices_online,"
           " sessions_online = EXCLUDED.sessions_online,"
           " payments_waiting = EXCLUDED.payments_waiting,"
           " unmatched_open = EXCLUDED.unmatched_open, outbox_depth = EXCLUDED.outbox_depth,"
           " journal_depth = EXCLUDED.journal_depth, version = EXCLUDED.version,"
           " body = EXCLUDED.body WHERE health.seq < EXCLUDED.seq")


def _payment(a: int, e: Event) -> tuple:
    b = e["body"]
    return (a, b["id"], b.get("public_id"), b.get("plan_id"), b.get("mac"),
            b.get("phone_masked"), b.get("amount"), b["status"], b.get("result_code"),
            b.get("receipt"), b.get("paid_amount"), b.get("channel"), b.get("created_at"),
            b.get("settled_at"))


def _grant(a: int, e: Event) -> tuple:
    b = e["body"]
    return (a, b["id"], b["mac"], b.get("plan_id"), b.get("payment_id"), b.get("voucher_id"),
            b.get("receipt"), b["source"], b["seconds"], b["starts_at"], b["expires_at"],
            b["created_at"])


def _voucher(a: int, e: Event) -> tuple:
    b = e["body"]
    return (a, b["id"], b["code"], b.get("plan_id"), b.get("batch"), b["status"],
            b.get("created_at"), b.get("valid_until"), b.get("used_at"), b.get("used_by_mac"),
            b.get("claim_id"), b.get("plan_name"), b.get("seconds"), b.get("rate_limit"),
            b.get("data_cap_bytes"))


def _device(a: int, e: Event) -> tuple:
    b = e["body"]
    return (a, b["mac"], b.get("first_seen"))


def _unmatched(a: int, e: Event) -> tuple:
    b = e["body"]
    return (a, b["id"], b.get("source"), b.get("receipt"), b.get("amount"),
            b.get("phone_masked"), b.get("reason"), b.get("received_at"), b.get("resolved_at"))


def _health(a: int, e: Event) -> tuple:
    b = e["body"]
    return (a, e["seq"], e["at"], b.get("devices_online"), b.get("sessions_online"),
            b.get("payments_waiting"), b.get("unmatched_open"), b.get("outbox_depth"),
            b.get("journal_depth"), b.get("version"), Jsonb(b))


PROJECTIONS: dict[str, tuple[str, Callable[[int, Event], tuple]]] = {
    "payment": (_PAYMENT, _payment),
    "grant": (_GRANT, _grant),
    "voucher": (_VOUCHER, _voucher),
    "device": (_DEVICE, _device),
    "unmatched": (_UNMATCHED, _unmatched),
    "health": (_HEALTH, _health),
}


def project(conn: psycopg.Connection, appliance_id: int, events: list[Event]) -> None:
    """Upsert each event's row, in seq order; runs of one kind go in one executemany."""
    run_kind, run_rows = None, []
    with conn.cursor() as cursor:
        for event in events:
            if event["kind"] != run_kind and run_rows:
                cursor.executemany(PROJECTIONS[run_kind][0], run_rows)
                run_rows = []
            run_kind = event["kind"]
            run_rows.append(PROJECTIONS[run_kind][1](appliance_id, event))
        if run_rows:
            cursor.executemany(PROJECTIONS[run_kind][0], run_rows)
        conflicts = [(e["body"].get("used_by_mac"), e["body"].get("used_at"), time.time(),
                      appliance_id, e["body"]["id"]) for e in events
                     if e["kind"] == "voucher" and e["body"].get("status") == "used"
                     and e["body"].get("claim_id") is None]
        if conflicts:  # used at home without the hub's word: did another venue claim it?
            cursor.executemany(_CONFLICT, conflicts)
