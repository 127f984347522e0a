"""M-Pesa helpers: a fast in-process appliance (the `appliance` fixture's), the one `buy`,
a purchase's status as its own device sees it, and people answering prompts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from hotspotd.app import Appliance
from hotspotd.simulators.daraja import DarajaSimulator
from hotspotd.simulators.daraja.state import PromptNotPending
from hotspotd.simulators.phones import SimulatedPhone
from support.appliance import running_appliance
from support.phones import phone_for
from support.wait import wait_until

APPROVES = "254700000000"  # the Daraja simulator approves it by itself
PERSON_PREFIX = "25471110"  # numbers the simulator never answers by itself: `answering` does

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


def buy(at: Appliance | str, number: str, device: str | SimulatedPhone, plan_id: int = 1,
        *, lang: str | None = None, **extra: Any) -> requests.Response:
    """POST /api/purchases for M-Pesa `number` from `device`, as the customer's page does.

    `at` is the in-process appliance, or the portal URL of a daemon; `device` is the phone
    itself, or (in-process only) the MAC of a phone on the appliance's simulated WiFi: the
    appliance places the purchase by the request's source address, never by a MAC it is told.
    """
    url = at if isinstance(at, str) else portal(at)
    phone = device if isinstance(device, SimulatedPhone) else phone_for(at, device)
    query = f"?lang={lang}" if lang else ""
    return phone.post(f"{url}api/purchases{query}", timeout=30,
                      json={"plan_id": plan_id, "phone": number, **extra})


def accepted(response: requests.Response) -> str:
    """The purchase's public id from `buy`'s answer, which must be 202 Accepted."""
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def status(at: Appliance | str, public_id: str, lang: str = "en",
           device: SimulatedPhone | None = None) -> dict[str, Any]:
    """The purchase as its own device sees it (nobody else may read it): `device`, or on the
    in-process appliance the phone of the MAC the purchase was stored for."""
    if device is None and not isinstance(at, str):
        row = at.db.query("SELECT mac FROM payments WHERE public_id = ?", (public_id,))
        device = phone_for(at, row[0]["mac"]) if row else None
    url = at if isinstance(at, str) else portal(at)
    get = device.get if device else requests.get
    return get(f"{url}api/purchases/{public_id}?lang={lang}", timeout=10).json()


def wait_final(at: Appliance | str, public_id: str, timeout: float = 20,
               device: SimulatedPhone | None = None) -> dict[str, Any]:
    """The purchase's status once it is no longer pending (see `status`)."""
    return wait_until(lambda: (body := status(at, public_id, device=device))["status"]
                      != "pending" and body, timeout=timeout, interval=0.1,
                      message=f"purchase {public_id} to end")


def callback_root(appliance: Appliance) -> str:
    return f"{portal(appliance)}callbacks/{appliance.config.web.callback_token}"


def rows(appliance: Appliance, sql: str, *params: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in appliance.db.query(sql, params)]


@contextmanager
def answering(sim: DarajaSimulator, outcomes: dict[str, list[str]] | None = None,
              delay: float = 0.1) -> Iterator[None]:
    """People on phones, while the block runs: each number in `outcomes` answers its prompts
    in turn with the outcomes listed ("cancel", "ignore", ...); every other PERSON_PREFIX
    number approves each prompt shortly after it arrives."""
    stop, answered = threading.Event(), set()
    waiting = {number: list(answers) for number, answers in (outcomes or {}).items()}

    def run() -> None:
        while not stop.wait(delay):
            for prompt in sim.prompts():
                checkout, number = prompt["checkout_request_id"], prompt["phone"]
                if prompt["state"] != "pending" or checkout in answered:
                    continue
                if number in waiting:
                    if not waiting[number]:
                        continue
                    outcome = waiting[number].pop(0)
                elif number.startswith(PERSON_PREFIX):
                    outcome = "approve"
                else:
                    continue
                answered.add(checkout)
                with suppress(PromptNotPending):  # answered meanwhile
                    sim.resolve(checkout, outcome)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@dataclass(frozen=True)
class Online:
    """How long the honest customer beside an attack waited, from the purchase request."""
    prompted: float  # until the M-Pesa prompt was on the phone (Daraja took the push)
    online: float  # until the router listed the device active


def honest_customer_gets_online(appliance: Appliance, device: str | SimulatedPhone,
                                number: str = APPROVES, timeout: float = 60.0) -> Online:
    """The customer beside an attack: the phone (or the phone with that MAC) buys plan 1
    from its own address, the purchase completes and the router lists the device active.
    Fails the test otherwise."""
    phone = device if isinstance(device, SimulatedPhone) else phone_for(appliance, device)
    started = time.monotonic()
    public_id = accepted(buy(appliance, number, phone))
    wait_until(lambda: appliance.db.query_one("SELECT push_sent_at FROM payments"
                                              " WHERE public_id = ?", (public_id,))[0],
               timeout=timeout, message="the honest customer's prompt")
    prompted = time.monotonic() - started
    assert wait_final(appliance, public_id, timeout, device=phone)["status"] == "completed"
    wait_until(lambda: any(row["mac-address"] == phone.mac
                           for row in appliance.router_simulator.active_hosts()),
               timeout=20, message=f"{phone.mac} online on the router")
    return Online(prompted, time.monotonic() - started)
