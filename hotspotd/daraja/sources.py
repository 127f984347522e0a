"""Where a callback came from: the peer address, or `X-Forwarded-For` when (and only when)
the peer is one of our configured reverse proxies; and whether that source is trusted."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    """"196.201.214.200" or "10.0.0.0/8" -> networks; raises ValueError on bad input."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items)


def _in(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


@dataclass(frozen=True)
class SourcePolicy:
    allowlist: tuple[Network, ...] = ()
    trusted_proxies: tuple[Network, ...] = ()

    @classmethod
    def from_config(cls, allowlist: Iterable[str], proxies: Iterable[str]) -> SourcePolicy:
        return cls(parse_networks(allowlist), parse_networks(proxies))

    def source_of(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client address: walk X-Forwarded-For from the right past our own proxies."""
        address = peer or ""
        if not forwarded_for or not _in(address, self.trusted_proxies):
            return address
        for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
            address = hop
            if not _in(hop, self.trusted_proxies):
                break
        return address

    def allowed(self, source: str) -> bool:
        """No allow-list: anyone may post (callbacks then need STK Query confirmation)."""
        return not self.allowlist or _in(source, self.allowlist)

    def trusted(self, source: str) -> bool:
        """Only an allow-listed source is trusted to settle a payment by itself."""
        return bool(self.allowlist) and _in(source, self.allowlist)
