"""Phones for tests: each MAC joins the router simulator's WiFi at its own loopback address.

The appliance places every portal request by its source address (the router's host table),
so a test never tells it a MAC: it sends the request from the phone that has that MAC.

    phone = phone_for(appliance, "AA:BB:CC:00:00:07")   # in-process appliance
    phone = daemon_phone(daemon, "AA:BB:CC:00:00:07")   # `hotspotd run` subprocess
    phone.post(portal + "api/purchases", json={"plan_id": 1, "phone": "254700000000"})
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import requests

from hotspotd.simulators.phones import SimulatedPhone, join_wifi, next_phone_address

_phones: dict[tuple[int, str], SimulatedPhone] = {}  # daemons': by id(daemon), MAC
# In-process routers' phones, by the router object itself: an id() is reused once the
# object is gone, and a later test's router would inherit phones it never saw join.
_router_phones: weakref.WeakKeyDictionary[Any, dict[str, SimulatedPhone]] = \
    weakref.WeakKeyDictionary()
_lock = threading.Lock()


def phone_for(appliance: Any, mac: str) -> SimulatedPhone:
    """The phone with `mac` on the in-process appliance's simulated WiFi (joined once)."""
    router = appliance.router_simulator
    with _lock:
        phones = _router_phones.setdefault(router, {})
        if mac.upper() not in phones:
            phones[mac.upper()] = join_wifi(router, mac)
        return phones[mac.upper()]


def join_router_page(router_status_url: str, mac: str,
                     address: str | None = None) -> SimulatedPhone:
    """A phone joins the WiFi of a simulator in another process (its status page)."""
    phone = SimulatedPhone(mac, address or next_phone_address())
    response = requests.post(router_status_url.rstrip("/") + "/hosts", timeout=10,
                             json={"mac": phone.mac, "address": phone.address})
    response.raise_for_status()
    return phone


def daemon_phone(daemon: Any, mac: str) -> SimulatedPhone:
    """The phone with `mac` on a `hotspotd run` subprocess's simulated WiFi. Joins again at
    every call (the simulator forgets its hosts when the daemon restarts), keeping the
    phone's address."""
    key = (id(daemon), mac.upper())
    with _lock:
        known = _phones.get(key)
    phone = join_router_page(daemon.runtime["router_status_url"], mac,
                             known.address if known else None)
    with _lock:
        _phones[key] = phone
    return phone
