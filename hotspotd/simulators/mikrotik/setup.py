"""The router's configuration menus a venue's set-up touches, printed as RouterOS prints them.

`/radius`, `/radius/incoming`, `/ip/hotspot` (the servers), `/ip/hotspot/profile`,
`/ip/hotspot/walled-garden/ip` and `/ip/dhcp-server/option` (`/ip/firewall/nat` is
`firewall.NatTable`). By default they hold what `hotspotd routeros-script` sets for the
appliance (a router set up with `/ip hotspot setup`, then the script); `RouterSetup` names
a drift from that, and every menu also takes `add` / `set` / `remove` over the API, so a
test can break the router the way an owner would.

As on RouterOS, values are strings (`true`/`false` for flags, whatever `yes`/`no` was
written). `secret` and `mac-auth-password` are printed only when `RouterSetup.sensitive`
is set: the script's API group lacks the `sensitive` policy, and RouterOS hides such
values from it (field reports; unconfirmed for every 7.x release).

What is modelled is the printed configuration: `use-radius=no` does not stop the
simulator's logins from using RADIUS, nor does `accept=no` close its CoA port. The
`require-message-auth` value is the NAS's own setting (`require_message_auth`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import count

from .api_server import CommandTrap

CATEGORY_ARGUMENT = 1
SENSITIVE = frozenset({"secret", "mac-auth-password"})
CAPTIVE_API_PATH = "/captive-portal/api"  # as hotspotd.router.script
_FLAGS = frozenset({"disabled", "use-radius", "radius-accounting", "accept", "default",
                    "dynamic", "invalid", "accounting-backup", "force"})
_BOOL = {"yes": "true", "no": "false", "true": "true", "false": "false"}


@dataclass(frozen=True)
class RouterSetup:
    """How the router is set up. Defaults: as `hotspotd routeros-script` leaves it."""

    portal_url: str = ""  # the appliance's portal; "": http://<appliance>:8080
    interface: str = "bridge"  # the hotspot server's interface
    radius_address: str = ""  # "": the appliance
    coa_accept: bool = True
    coa_port: int | None = None  # printed port; None: where the CoA listener is bound
    server_profile: str = "hotspotd"  # the profile the hotspot server uses
    use_radius: bool = True
    login_by: str = "mac,http-chap,http-pap"
    interim_update: str = "received"
    walled_garden: bool = True
    capport_url: str | None = ""  # DHCP option 114's URL; "": the script's; None: no option
    sensitive: bool = False  # print secret / mac-auth-password to the API user
    secret: str = ""  # "": the simulator's RADIUS secret
    mac_password: str = ""


class Menu:
    """One menu's rows in order; thread-safe (API connections have their own threads)."""

    def __init__(self, defaults: Mapping[str, str], rows: list[Mapping[str, str]], *,
                 sensitive: bool = False) -> None:
        self._defaults = dict(defaults)
        self._ids = count(1)
        self._lock = threading.Lock()
        self._sensitive = sensitive
        self._rows = [self._row(values) for values in rows]

    def rows(self) -> list[dict[str, str]]:
        with self._lock:
            return [self._shown(row) for row in self._rows]

    def add(self, values: Mapping[str, str]) -> str:
        row = self._row(values)
        with self._lock:
            self._rows.append(row)
        return row[".id"]

    def set(self, ids: str, values: Mapping[str, str]) -> None:
        with self._lock:
            for row in self._find(ids):
                row.update(_normal(values))

    def remove(self, ids: str) -> None:
        with self._lock:
            for row in self._find(ids):
                self._rows.remove(row)

    def _find(self, ids: str) -> list[dict[str, str]]:
        by_id = {row[".id"]: row for row in self._rows}
        try:
            return [by_id[item] for item in ids.split(",")]
        except KeyError:
            raise CommandTrap("no such item") from None

    def _row(self, values: Mapping[str, str]) -> dict[str, str]:
        unknown = set(values) - set(self._defaults) - {"comment"}
        if unknown:
            raise CommandTrap(f"unknown parameter {sorted(unknown)[0]}", CATEGORY_ARGUMENT)
        return {".id": f"*{next(self._ids):X}", **self._defaults, **_normal(values)}

    def _shown(self, row: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in row.items() if self._sensitive or k not in SENSITIVE}


class Singleton:
    """A menu of one unnamed item (`/radius/incoming`): `print` and `set` only."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self._lock = threading.Lock()

    def rows(self, live: Callable[[dict[str, str]], dict[str, str]] = dict) -> list[
            dict[str, str]]:
        with self._lock:
            return [live(dict(self._values))]

    def set(self, values: Mapping[str, str]) -> None:
        unknown = set(values) - set(self._values)
        if unknown:
            raise CommandTrap(f"unknown parameter {sorted(unknown)[0]}", CATEGORY_ARGUMENT)
        with self._lock:
            self._values.update(_normal(values))


def _normal(values: Mapping[str, str]) -> dict[str, str]:
    return {k: _BOOL.get(v, v) if k in _FLAGS else v for k, v in values.items()}


def _flag(value: bool) -> str:
    return "true" if value else "false"


RADIUS_DEFAULTS = {"address": "0.0.0.0", "secret": "", "service": "", "called-id": "",
                   "domain": "", "authentication-port": "1812", "accounting-port": "1813",
                   "timeout": "300ms", "accounting-backup": "false", "realm": "",
                   "src-address": "0.0.0.0", "protocol": "udp", "certificate": "none",
                   "require-message-auth": "yes-for-request-resp", "disabled": "false"}
PROFILE_DEFAULTS = {"name": "", "hotspot-address": "", "dns-name": "",
                    "html-directory": "hotspot", "html-directory-override": "",
                    "rate-limit": "", "http-proxy": "0.0.0.0:0", "smtp-server": "0.0.0.0",
                    "login-by": "cookie,http-chap", "http-cookie-lifetime": "3d",
                    "split-user-domain": "false", "use-radius": "false",
                    "radius-accounting": "true", "radius-interim-update": "received",
                    "nas-port-type": "wireless-802.11", "radius-default-domain": "",
                    "radius-location-id": "", "radius-location-name": "",
                    "radius-mac-format": "XX:XX:XX:XX:XX:XX",
                    "mac-auth-mode": "mac-as-username", "mac-auth-password": "",
                    "install-hotspot-queue": "false", "default": "false"}
SERVER_DEFAULTS = {"name": "", "interface": "", "address-pool": "hs-pool-1", "profile":
                   "default", "idle-timeout": "5m", "keepalive-timeout": "none",
                   "login-timeout": "none", "addresses-per-mac": "2", "proxy-status": "",
                   "HTTPS": "false", "invalid": "false", "disabled": "false"}
GARDEN_DEFAULTS = {"action": "accept", "dst-address": "", "src-address": "", "protocol": "",
                   "dst-port": "", "server": "", "invalid": "false", "dynamic": "false",
                   "disabled": "false"}
OPTION_DEFAULTS = {"name": "", "code": "", "value": "", "raw-value": "", "force": "false"}


class SetupMenus:
    """Every configuration menu of `RouterSetup` for a router serving `appliance`."""

    def __init__(self, setup: RouterSetup, *, appliance: str, auth_port: int,
                 acct_port: int, hotspot_server: str, secret: str,
                 require_message_auth: bool) -> None:
        self.setup = setup
        portal = (setup.portal_url or f"http://{appliance}:8080").rstrip("/")
        radius = {"address": setup.radius_address or appliance,
                  "secret": setup.secret or secret,
                  "service": "hotspot", "authentication-port": str(auth_port),
                  "accounting-port": str(acct_port), "timeout": "3s",
                  "require-message-auth": "yes-for-request-resp" if
                  require_message_auth else "no", "comment": "hotspotd"}
        self.radius = Menu(RADIUS_DEFAULTS, [radius], sensitive=setup.sensitive)
        port = "" if setup.coa_port is None else str(setup.coa_port)
        self.incoming = Singleton({"accept": _flag(setup.coa_accept), "port": port,
                                   "vrf": "main"})
        self.profiles = Menu(PROFILE_DEFAULTS, _profiles(setup), sensitive=setup.sensitive)
        self.servers = Menu(SERVER_DEFAULTS, [{"name": hotspot_server, "interface":
                                               setup.interface,
                                               "profile": setup.server_profile}])
        garden = [{"dst-address": appliance, "comment": "hotspotd"}] \
            if setup.walled_garden else []
        self.walled_garden = Menu(GARDEN_DEFAULTS, garden)
        capport = f"{portal}{CAPTIVE_API_PATH}" if setup.capport_url == "" \
            else setup.capport_url
        self.dhcp_options = Menu(OPTION_DEFAULTS, [] if capport is None else
                                 [dhcp_option("capport", "114", f"'{capport}'")])

    def incoming_rows(self, bound_port: int) -> list[dict[str, str]]:
        """`/radius/incoming`; the script's `port=` is where the CoA listener is bound,
        unless `RouterSetup.coa_port` or a `set port=` says otherwise."""
        def live(values: dict[str, str]) -> dict[str, str]:
            return {**values, "port": values["port"] or str(bound_port)}
        return self.incoming.rows(live)


def _profiles(setup: RouterSetup) -> list[Mapping[str, str]]:
    hotspotd = {"name": "hotspotd", "use-radius": _flag(setup.use_radius),
                "radius-interim-update": setup.interim_update, "radius-accounting": "true",
                "login-by": setup.login_by, "mac-auth-mode": "mac-as-username",
                "mac-auth-password": setup.mac_password}
    return [{"name": "default", "default": "true"}, {"name": "hsprof1", "dns-name": "",
                                                     "hotspot-address": "10.5.50.1"},
            hotspotd]


def dhcp_option(name: str, code: str, value: str) -> dict[str, str]:
    """An option row; `raw-value` is the hex of a quoted string value (`'...'`)."""
    raw = value[1:-1].encode().hex() if value.startswith("'") and value.endswith("'") \
        else value.removeprefix("0x")
    return {"name": name, "code": code, "value": value, "raw-value": raw}
