"""Helpers for the issue-3 M-Pesa tests: a fast in-process appliance and small HTTP calls."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from hotspotd.app import Appliance
from support.appliance import running_appliance
from support.phones import phone_for

FAST = {
    "settlement": {"inline_query_delays": [0.3], "query_backoff_seconds": [0.3, 0.5],
                   "reconcile_interval_seconds": 1, "pending_expiry_seconds": 30},
    "simulators": {"approve_delay_seconds": 0.3},
    "daraja": {"requests_per_minute": 6000},
    "c2b": {"pull_interval_seconds": 0},
}


@contextmanager
def fast_appliance(data_dir: Path, **changes: dict[str, Any]) -> Iterator[Appliance]:
    sections = {name: dict(values) for name, values in FAST.items()}
    for name, values in changes.items():
        sections.setdefault(name, {}).update(values)
    with running_appliance(data_dir, **sections) as appliance:
        yield appliance


def portal(appliance: Appliance) -> str:
    return str(appliance.addresses["portal_url"])


def buy(appliance: Appliance, phone: str, mac: str, plan_id: int = 1,
        **extra: Any) -> requests.Response:
    """POST /api/purchases from the device with `mac` (its own address on the WiFi)."""
    return phone_for(appliance, mac).post(portal(appliance) + "api/purchases", timeout=30,
                                          json={"plan_id": plan_id, "phone": phone, **extra})


def status(appliance: Appliance, public_id: str, lang: str = "en") -> dict[str, Any]:
    """The purchase as its own device sees it (nobody else may read it)."""
    row = appliance.db.query("SELECT mac FROM payments WHERE public_id = ?", (public_id,))
    device = phone_for(appliance, row[0]["mac"]) if row else None
    get = device.get if device else requests.get
    return get(f"{portal(appliance)}api/purchases/{public_id}?lang={lang}", timeout=10).json()


def wait_final(appliance: Appliance, public_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = status(appliance, public_id)
        if body["status"] != "pending":
            return body
        time.sleep(0.1)
    raise AssertionError(f"purchase {public_id} still pending after {timeout} s")


def callback_root(appliance: Appliance) -> str:
    return f"{portal(appliance)}callbacks/{appliance.config.web.callback_token}"


def rows(appliance: Appliance, sql: str, *params: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in appliance.db.query(sql, params)]
