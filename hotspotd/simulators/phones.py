"""Simulated phones on the venue WiFi: each one its own source address, known to the router.

A real phone joins the hotspot's network, gets an address by DHCP, and the router lists it
in `/ip/hotspot/host` (its IP → MAC map). A `SimulatedPhone` does the same on one machine:
it has a MAC and a loopback address of its own (127.x.y.z; Linux routes the whole of
127.0.0.0/8 to the loopback interface), every HTTP request it makes leaves from that
address, and joining registers the pair in the MikroTik simulator's host table. The
appliance then places the phone's requests by their source address exactly as it would a
real phone's; nothing the phone sends about itself is believed.

    phone = join_wifi(appliance.router_simulator, "AA:BB:CC:00:00:07")
    phone.post(portal_url + "api/purchases", json={"plan_id": 1, "phone": "2547..."})
"""

from __future__ import annotations

import ipaddress
import itertools
import threading
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter

# Phones get addresses from 127.64.0.0/10 in order; the appliance and simulators listen on
# 127.0.0.1, which stays "this machine" (the demo registers it as the demo's browser).
PHONE_NETWORK = ipaddress.ip_network("127.64.0.0/10")
_next_address = itertools.count(1)
_address_lock = threading.Lock()


def next_phone_address() -> str:
    """A loopback address no other phone of this process has used."""
    with _address_lock:
        return str(PHONE_NETWORK[next(_next_address)])


class HostTable(Protocol):
    """What a phone needs of the router: to be seen by the hotspot (DHCP, first packet)."""

    def add_host(self, mac: str, ip: str) -> None: ...


class _SourceAddressAdapter(HTTPAdapter):
    """Every connection of the session leaves from `address`."""

    def __init__(self, address: str, **options: Any) -> None:
        self._source = (address, 0)
        super().__init__(**options)

    def init_poolmanager(self, *args: Any, **options: Any) -> None:
        options["source_address"] = self._source
        super().init_poolmanager(*args, **options)


class SimulatedPhone:
    """A device on the WiFi: a MAC, an address, and an HTTP session from that address."""

    def __init__(self, mac: str, address: str) -> None:
        self.mac = mac.upper()
        self.address = address
        self.session = requests.Session()
        adapter = _SourceAddressAdapter(address, pool_maxsize=16)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"SimulatedPhone({self.mac}, {self.address})"

    def get(self, url: str, **options: Any) -> requests.Response:
        options.setdefault("timeout", 30)
        return self.session.get(url, **options)

    def post(self, url: str, **options: Any) -> requests.Response:
        options.setdefault("timeout", 30)
        return self.session.post(url, **options)

    def close(self) -> None:
        self.session.close()


def join_wifi(router: HostTable, mac: str, address: str | None = None) -> SimulatedPhone:
    """A phone with `mac` joins the router's WiFi at `address` (default: a fresh one)."""
    phone = SimulatedPhone(mac, address or next_phone_address())
    router.add_host(phone.mac, phone.address)
    return phone
