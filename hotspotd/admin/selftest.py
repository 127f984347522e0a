"""The self-test: each link the appliance depends on, checked, with what to fix in plain words.

Checks that need a live outside system (Daraja OAuth, router API login, CoA, clock) are
`hotspotd check`'s own (hotspotd.ops.checks), passed in by the wiring code as
`WebContext.self_test`; only the callback reachability probe (through the public URL) is
made here.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from hotspotd.store.db import Database

MIN_FREE_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def run_self_test(db: Database, now: float, probes: Callable[[], list[Any]], *,
                  public_url: str = "") -> list[Check]:
    """This appliance's own evidence (database, disk, RADIUS seen, router outbox), callback
    reachability when a public URL is set, then the live probes of `hotspotd check` (key
    file, Daraja OAuth, router API, CoA, clock)."""
    checks = [_database(db), _disk(db), _radius_seen(db, now), _router_outbox(db, now)]
    if public_url:
        checks.append(_callbacks_reachable(public_url))
    try:
        found = probes()
    except Exception as exc:  # a failing probe is itself a finding, never a crash
        return [*checks, Check("live checks", False, f"could not run: {exc!r}",
                               "See the daemon's log for the error.")]
    return checks + [Check(r.name, r.ok, r.detail, r.fix) for r in found]


def _callbacks_reachable(public_url: str) -> Check:
    """Daraja POSTs callbacks to the public URL: can this appliance be reached through it?"""
    url = public_url.rstrip("/") + "/healthz"
    try:
        status = requests.get(url, timeout=5).status_code
    except requests.RequestException as exc:
        return Check("callbacks reachable", False, f"{url}: {type(exc).__name__}",
                     "Check the port forward, reverse proxy or tunnel to this appliance;"
                     " payments still settle by STK Query meanwhile.")
    ok = status in (200, 503)  # 503: reachable, just unhealthy
    return Check("callbacks reachable", ok, f"{url} answered {status}",
                 "" if ok else "The public URL does not lead to this appliance.")


def _database(db: Database) -> Check:
    result = db.query_one("PRAGMA quick_check")
    ok = result is not None and result[0] == "ok"
    return Check("database", ok, "integrity OK" if ok else str(result and result[0]),
                 "" if ok else "Restore the database from the last backup.")


def _disk(db: Database) -> Check:
    usage = shutil.disk_usage(db.path.parent)
    ok = usage.free >= MIN_FREE_BYTES
    return Check("disk space", ok, f"{usage.free // (1024 * 1024)} MB free",
                 "" if ok else "Free some disk space: the database needs room to grow.")


def _radius_seen(db: Database, now: float) -> Check:
    row = db.query_one("SELECT MAX(updated_at) FROM radius_sessions")
    last = row[0] if row else None
    if last is None:
        return Check("RADIUS from the router", False, "no accounting received yet",
                     "Check the router's /radius entry (address, secret) and that the"
                     " hotspot profile uses RADIUS accounting.")
    minutes = int((now - last) // 60)
    return Check("RADIUS from the router", True, f"last accounting {minutes} min ago")


def _router_outbox(db: Database, now: float) -> Check:
    row = db.query_one("SELECT COUNT(*), MAX(last_error) FROM router_ops WHERE state = 'failed'"
                       " AND created_at >= ?", (now - 86400,))
    failed = row[0] if row else 0
    if failed:
        return Check("router operations", False, f"{failed} failed today: {row[1]}",
                     "Check the router API address, user and password in Settings.")
    return Check("router operations", True, "no failures today")
