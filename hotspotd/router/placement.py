"""Which device a request comes from, by the network's word, never the device's.

The portal sees a request's source address (behind a configured reverse proxy, its
X-Forwarded-For; see `daraja.sources.SourcePolicy`). The router knows which MAC holds that
address: `/ip/hotspot/host` lists every device the hotspot sees, logged in or not. The
locator asks it (through its own API connection, so the portal never waits behind the
router outbox), caches answers briefly, and asks again on a miss. Optionally the
appliance's own neighbour table (`/proc/net/arp`) answers when it shares the hotspot's
network and the router has no answer. Everything a phone says about itself (`mac`, `ip`
in the router's redirect, form fields, JSON) is only a hint, checked against this.

A request from the router's own address means the router NATs its clients' traffic to the
appliance (masquerade): nobody can be placed. The locator counts those, so `hotspotd check`
and the owner's self-test can say how to fix it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hotspotd.macs import normalise_mac
from hotspotd.router.gateway import RouterError

log = logging.getLogger(__name__)

ARP_TABLE = Path("/proc/net/arp")
ARP_COMPLETE = 0x2


@dataclass(frozen=True)
class Placed:
    """A device the network vouches for: its MAC and the address it is using now."""

    mac: str
    ip: str


class NotPlaced(Exception):
    """The network cannot say which device sent a request. `reason`: `unknown` (no host
    at that address), `nat` (it came from the router itself), `router` (the router did not
    answer), `mismatch` (the request's own mac/ip hints name another device)."""

    def __init__(self, reason: str, address: str) -> None:
        super().__init__(f"cannot place a request from {address or 'nowhere'}: {reason}")
        self.reason = reason
        self.address = address


@dataclass
class PlacementStats:
    """What the self-test and /metrics read: how requests were placed, and NAT evidence."""

    placed: int = 0
    unplaced: int = 0
    from_router: int = 0  # requests whose source was the router's own address (NAT)
    last_from_router_at: float | None = None
    router_errors: int = 0


def neighbour_mac(ip: str, table: Path = ARP_TABLE) -> str | None:
    """The MAC this machine's neighbour (ARP) table holds for `ip`, if complete."""
    try:
        lines = table.read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 4 and fields[0] == ip and int(fields[2], 16) & ARP_COMPLETE:
            try:
                return normalise_mac(fields[3])
            except ValueError:
                return None
    return None


def no_neighbours(ip: str) -> str | None:
    """The neighbour table is off (the appliance is not on the hotspot's network)."""
    return None


class DeviceLocator:
    """Source address → the device the router (or the neighbour table) says holds it."""

    def __init__(self, router_lookup: Callable[[str], str | None], *,
                 neighbours: Callable[[str], str | None], router_addresses: set[str],
                 ttl: float = 10.0, miss_ttl: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._router_lookup = router_lookup
        self._neighbours = neighbours
        self.router_addresses = router_addresses
        self.ttl, self.miss_ttl = ttl, miss_ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()
        self.stats = PlacementStats()

    def place(self, ip: str, *, fresh: bool = False) -> Placed:
        """The device at `ip`; `fresh` asks the router now (before anything is created).
        Raises NotPlaced."""
        mac = self._lookup(ip, fresh) if ip else None
        if mac is None:
            self.stats.unplaced += 1
            if ip in self.router_addresses:  # the router's own address is no hotspot host
                self.stats.from_router += 1
                self.stats.last_from_router_at = time.time()
                raise NotPlaced("nat", ip)
            raise NotPlaced("unknown", ip)
        self.stats.placed += 1
        return Placed(mac, ip)

    def forget(self, ip: str) -> None:
        with self._lock:
            self._cache.pop(ip, None)

    def _lookup(self, ip: str, fresh: bool) -> str | None:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(ip)
        if cached is not None and not fresh:
            expires, mac = cached
            if now < expires:
                return mac
        try:
            mac = self._router_lookup(ip)
        except RouterError as exc:
            self.stats.router_errors += 1
            mac = self._neighbours(ip)
            if mac is None:
                log.warning("router could not place %s: %s", ip, exc)
                raise NotPlaced("router", ip) from None
            return mac  # not cached: ask the router again next time
        if mac is None:
            mac = self._neighbours(ip)
        with self._lock:
            if len(self._cache) > 50_000:  # a flood of addresses: start again
                self._cache.clear()
            self._cache[ip] = (now + (self.ttl if mac else self.miss_ttl), mac)
        return mac
