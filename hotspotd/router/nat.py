"""Does the router keep customer traffic to the appliance out of masquerade?

The portal knows a device by the source address of its requests (`router.placement`). A
hotspot router masquerades its clients (`/ip hotspot setup` adds "masquerade hotspot
network"); unless a `srcnat` rule accepts traffic to the appliance first, every phone's
request arrives from the router's own address and nobody can be placed (nor can anyone
buy). `hotspotd routeros-script` adds that rule; `hotspotd check` reads `/ip/firewall/nat`
and judges it here; the running daemon's self-test also counts requests that arrived from
the router's address (`placement.PlacementStats.from_router`).

The rules are read in order, as the router runs the `srcnat` chain: enabled, valid rules
only. An `accept` whose `dst-address` covers the appliance (no `dst-address`: everything)
keeps the traffic out, if it comes before any `masquerade` / `src-nat` that would match
traffic to the appliance: one whose `dst-address` (if any) covers it and that is not tied
to an out-interface. Rules tied to `out-interface`/`out-interface-list` (RouterOS's
default masquerade out of the WAN list) cannot be judged from here, since which interface
leads to the appliance is not read; the self-test's evidence covers that case at run time.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SOURCE_NAT = frozenset({"masquerade", "src-nat"})
OUT_MATCHERS = ("out-interface", "out-interface-list")


@dataclass(frozen=True)
class NatFinding:
    """`ok` when traffic to the appliance keeps its source address; `detail` says why."""

    ok: bool
    detail: str


def nat_exception_command(appliance: str) -> str:
    """The RouterOS command that keeps customer traffic to `appliance` out of masquerade:
    an accept placed before the first static rule (dynamic rules cannot be placed before;
    with no static rule there is no masquerade to come before)."""
    rule = f"chain=srcnat action=accept dst-address={appliance} comment=hotspotd"
    return (f":if ([:len [/ip firewall nat find dynamic=no]] = 0) do={{/ip firewall nat add"
            f" {rule}}} else={{/ip firewall nat add {rule}"
            " place-before=[:pick [/ip firewall nat find dynamic=no] 0]}")


def judge_nat(rows: Sequence[Mapping[str, str]], appliance: str) -> NatFinding:
    """Read `/ip/firewall/nat` rows (in the router's order) for traffic to `appliance`."""
    for row in rows:
        if row.get("chain") != "srcnat" or _flag(row, "disabled") or _flag(row, "invalid"):
            continue
        action = row.get("action", "accept")
        if action == "accept" and covers(row.get("dst-address", ""), appliance) \
                and not row.get("dst-address-list"):
            return NatFinding(True, f"rule {_name(row)} accepts traffic to {appliance}"
                              " before any masquerade")
        if action in SOURCE_NAT and _may_apply(row, appliance):
            return NatFinding(False, f"rule {_name(row)} ({action}"
                              f"{_matchers(row)}) NATs customer traffic to {appliance}:"
                              " every phone arrives as the router and cannot be placed")
    return NatFinding(True, f"no masquerade applies to traffic to {appliance}")


def _may_apply(row: Mapping[str, str], appliance: str) -> bool:
    if any(row.get(name) for name in OUT_MATCHERS) or row.get("dst-address-list"):
        return False
    return covers(row.get("dst-address", ""), appliance)


def covers(dst: str, appliance: str) -> bool:
    """Does a `dst-address` value (`x`, `x/n`, `!x`, empty) match `appliance`?"""
    if not dst:
        return True
    negated = dst.startswith("!")
    try:
        inside = ipaddress.ip_address(appliance) in ipaddress.ip_network(
            dst.lstrip("!"), strict=False)
    except ValueError:
        return False  # a range (a-b) or a name: not proven either way
    return inside != negated


def _flag(row: Mapping[str, str], name: str) -> bool:
    return str(row.get(name, "false")).lower() in ("true", "yes")


def _name(row: Mapping[str, str]) -> str:
    rule_id = row.get(".id") or row.get("id") or "?"
    comment = row.get("comment")
    return f"{rule_id} \"{comment}\"" if comment else rule_id


def _matchers(row: Mapping[str, str]) -> str:
    shown = [f"{name}={row[name]}" for name in ("src-address", "dst-address", "in-interface")
             if row.get(name)]
    return " " + " ".join(shown) if shown else ""
