"""`/ip/firewall/nat` as a hotspot router holds it, printed as RouterOS prints it.

A router set up with `/ip hotspot setup` and `hotspotd routeros-script` has, in order: the
hotspot's dynamic rules (the "place hotspot rules here" marker and the dstnat jump to
`pre-hotspot`), then the static ones: the script's `srcnat accept dst-address=<appliance>`
(customer traffic to the appliance keeps its source address), RouterOS's default
masquerade out of the WAN list, and the hotspot setup's "masquerade hotspot network". That
is the default here. `appliance_exception=False` starts without the script's rule, as a
router whose owner never ran the script: everything a phone sends to the appliance then
arrives from the router's address, and `hotspotd check` must say so.

Rows carry `.id`, `chain`, `action`, the matchers set, `log`, `log-prefix`, `bytes`,
`packets`, `invalid`, `dynamic`, `disabled` and `comment`, all as strings. `add` (with
`place-before`), `remove` and `set` (e.g. `disabled=yes`) work over the API as on RouterOS;
dynamic rules cannot be moved, removed or placed before.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from itertools import count

from .api_server import CommandTrap

HOTSPOT_NETWORK = "10.5.50.0/24"  # /ip hotspot setup's default address pool
MATCHERS = ("src-address", "dst-address", "src-address-list", "dst-address-list", "protocol",
            "dst-port", "in-interface", "out-interface", "in-interface-list",
            "out-interface-list", "ipsec-policy", "hotspot", "jump-target", "to-addresses",
            "to-ports")
ACTIONS = frozenset({"accept", "masquerade", "src-nat", "dst-nat", "jump", "return",
                     "passthrough", "redirect", "netmap", "log"})
CATEGORY_ARGUMENT = 1
_TRUE = {"yes": "true", "true": "true", "no": "false", "false": "false"}


class NatTable:
    """The NAT rules in order; thread-safe (API connections run on their own threads)."""

    def __init__(self, *, appliance_address: str, appliance_exception: bool = True) -> None:
        self._ids = count(1)
        self._lock = threading.Lock()
        self._rows: list[dict[str, str]] = [
            self._row({"chain": "unused-hs-chain", "action": "passthrough",
                       "comment": "place hotspot rules here"}, dynamic=True),
            self._row({"chain": "dstnat", "action": "jump", "jump-target": "pre-hotspot",
                       "hotspot": ""}, dynamic=True),
        ]
        if appliance_exception:
            self._rows.append(self._row(appliance_exception_rule(appliance_address)))
        self._rows += [
            self._row({"chain": "srcnat", "action": "masquerade", "out-interface-list": "WAN",
                       "ipsec-policy": "out,none", "comment": "defconf: masquerade"}),
            self._row({"chain": "srcnat", "action": "masquerade",
                       "src-address": HOTSPOT_NETWORK,
                       "comment": "masquerade hotspot network"}),
        ]

    def rows(self) -> list[dict[str, str]]:
        """A snapshot of every rule, in the router's order."""
        with self._lock:
            return [dict(row) for row in self._rows]

    def add(self, attributes: Mapping[str, str]) -> str:
        """`/ip/firewall/nat/add`; returns the new `.id` (`place-before` an `.id`)."""
        values = {k: v for k, v in attributes.items() if k != "place-before"}
        if not values.get("chain"):
            raise CommandTrap("missing value(s) of argument(s) chain", CATEGORY_ARGUMENT)
        if values.get("action", "accept") not in ACTIONS:
            raise CommandTrap(f"input does not match any value of action: {values['action']}",
                              CATEGORY_ARGUMENT)
        row = self._row({"action": "accept", **values})
        with self._lock:
            position = len(self._rows)
            before = attributes.get("place-before")
            if before:
                position = self._index(before, movable=True)
            self._rows.insert(position, row)
        return row[".id"]

    def remove(self, ids: str) -> None:
        with self._lock:
            for rule_id in ids.split(","):
                del self._rows[self._index(rule_id, movable=True)]

    def set(self, ids: str, attributes: Mapping[str, str]) -> None:
        """`/ip/firewall/nat/set`: change values (`disabled=yes`, a matcher) of static rules."""
        with self._lock:
            for rule_id in ids.split(","):
                row = self._rows[self._index(rule_id, movable=True)]
                for name, value in attributes.items():
                    row[name] = _TRUE.get(value, value) if name == "disabled" else value

    def _index(self, rule_id: str, *, movable: bool) -> int:
        for index, row in enumerate(self._rows):
            if row[".id"] == rule_id:
                if movable and row["dynamic"] == "true":
                    raise CommandTrap("cannot change dynamic rule")
                return index
        raise CommandTrap("no such item")

    def _row(self, values: Mapping[str, str], *, dynamic: bool = False) -> dict[str, str]:
        disabled = _TRUE.get(values.get("disabled", "no"), "false")
        row = {".id": f"*{next(self._ids):X}", "chain": values["chain"],
               "action": values.get("action", "accept")}
        row |= {name: values[name] for name in MATCHERS if name in values}
        row |= {"log": "false", "log-prefix": "", "bytes": "0", "packets": "0",
                "invalid": "false", "dynamic": "true" if dynamic else "false",
                "disabled": disabled}
        if values.get("comment"):
            row["comment"] = values["comment"]
        return row


def appliance_exception_rule(appliance_address: str) -> dict[str, str]:
    """What `hotspotd routeros-script` adds: customer traffic to the appliance is not NATed."""
    return {"chain": "srcnat", "action": "accept", "dst-address": appliance_address,
            "comment": "hotspotd"}
