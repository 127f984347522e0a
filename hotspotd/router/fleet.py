"""Several routers at one venue (a second hotspot, an annex), seen by the outbox as one.

`RouterSet` is the outbox's router: a login goes to the router whose hotspot sees the
device now (`/ip/hotspot/host`), so a device that walks from one router's WiFi to another's
is logged in where it is, with the time it has; a removal goes to every router. `CoaSet`
sends a CoA or Disconnect-Request to the router that holds the session (by the NAS address
its accounting came from). With one router both are that router, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hotspotd.radius.coa import CoaClient, CoaOutcome, SessionChange, SessionRef
from hotspotd.router.gateway import RouterError, RouterGateway


class RouterSet:
    """The appliance's routers by name, first router first."""

    def __init__(self, gateways: Mapping[str, RouterGateway]) -> None:
        if not gateways:
            raise ValueError("at least one router")
        self._gateways = dict(gateways)

    def members(self) -> list[tuple[str, RouterGateway]]:
        return list(self._gateways.items())

    def login_host(self, *, mac: str, ip: str, user: str, password: str) -> None:
        """Log the device in on the router whose hotspot sees it, at the address it has
        there (its address on another router's WiFi is another one)."""
        if len(self._gateways) == 1:
            next(iter(self._gateways.values())).login_host(mac=mac, ip=ip, user=user,
                                                           password=password)
            return
        for gateway in self._gateways.values():
            there = gateway.host_ip(mac)
            if there:
                gateway.login_host(mac=mac, ip=there, user=user, password=password)
                return
        raise RouterError(f"{mac} is on no router's WiFi now")

    def find_active(self, mac: str) -> Any:
        for gateway in self._gateways.values():
            active = gateway.find_active(mac)
            if active is not None:
                return active
        return None

    def remove_active(self, mac: str) -> bool:
        removed = False
        for gateway in self._gateways.values():
            removed = gateway.remove_active(mac) or removed
        return removed


class CoaSet:
    """CoA/Disconnect to the router that holds the session: `clients` by the NAS address
    its RADIUS comes from; `default` (the first router's) when the session names none."""

    def __init__(self, clients: Mapping[str, Any], default: Any) -> None:
        self._clients, self._default = dict(clients), default

    def _for(self, session: SessionRef) -> Any:
        return self._clients.get(session.nas_address or "", self._default)

    def change(self, session: SessionRef, change: SessionChange) -> CoaOutcome:
        return self._for(session).change(session, change)

    def disconnect(self, session: SessionRef) -> CoaOutcome:
        return self._for(session).disconnect(session)


@dataclass(frozen=True)
class RouterSite:
    """One router of the venue as the appliance uses it."""

    name: str
    gateway: RouterGateway  # the outbox's connection
    placement: RouterGateway  # the portal's: placing requests never waits behind the outbox
    coa: CoaClient
    coa_address: tuple[str, int]
    simulator: Any  # the embedded MikroTik simulator, or None
    api_host: str
    address: dict[str, Any]  # for runtime.json / demo.json
    radius_client: str = ""  # the address its RADIUS comes from (sessions name it)


def simulator_host(host: str, index: int) -> str:
    """Where embedded router number `index` listens and sends RADIUS from: the first on
    `host`; with `host` on loopback the others on 127.10.<index>.1 (out of the way of the
    phones the demo and the tests put at 127.0.0.x and 127.64.x.y); elsewhere `host`."""
    if index == 0 or not host.startswith("127."):
        return host
    return f"127.10.{index}.1"


def radius_client_of(config: Any, index: int, router: Any) -> str:
    """The address router number `index` sends RADIUS (and so accounting) from."""
    if router.backend == "simulator":
        return simulator_host(config.simulators.host, index)
    return router.radius_client or router.host
