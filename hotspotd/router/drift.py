"""Does the router still hold what `hotspotd routeros-script` set? Every difference, with the
RouterOS command that fixes it.

Reads `/radius`, `/radius/incoming`, `/ip/hotspot`, `/ip/hotspot/profile`,
`/ip/hotspot/walled-garden/ip`, `/ip/firewall/nat` and `/ip/dhcp-server/option` through
the API (`RouterGateway.setup_rows`) and compares them with the script's inputs
(`router.script.inputs_from`). Used by `hotspotd check` and the owner UI's self-test.

Each area gives one OK finding, or one FAIL per difference. Values the API user cannot see
(`secret`, `mac-auth-password`: the script's group lacks the `sensitive` policy) are compared
only when the router prints them. Not compared: the walled-garden host entry, the DHCP
option set and network binding, the API user and service (the check's own login proves
those work).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from hotspotd.router.gateway import RouterCommandFailed
from hotspotd.router.nat import covers, judge_nat, nat_exception_command
from hotspotd.router.script import (
    CAPPORT_OPTION,
    CAPTIVE_API_PATH,
    INTERIM_UPDATE,
    LOGIN_BY,
    MAC_AUTH_MODE,
    PROFILE,
    REQUIRE_MESSAGE_AUTH,
    ScriptInputs,
)

Row = Mapping[str, str]
Reader = Callable[[str], list[dict[str, str]]]
SECRET_HINT = '"<the [radius] secret>"'


@dataclass(frozen=True)
class Drift:
    """One area's finding: OK, or one difference and the command that fixes it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def router_drift(read: Reader, inputs: ScriptInputs) -> list[Drift]:
    """Every area, in the script's order. RouterUnreachable propagates; a menu the router
    refuses to print FAILs its area only."""
    areas: list[tuple[str, Callable[[], list[Drift]]]] = [
        ("router radius", lambda: _radius(read("/radius"), inputs)),
        ("router coa", lambda: _incoming(read("/radius/incoming"), inputs)),
        ("router hotspot profile", lambda: _profile(read("/ip/hotspot"),
                                                    read("/ip/hotspot/profile"), inputs)),
        ("router walled garden", lambda: _garden(read("/ip/hotspot/walled-garden/ip"), inputs)),
        ("router nat", lambda: [_nat(read("/ip/firewall/nat"), inputs)]),
        ("router dhcp option 114", lambda: _capport(read("/ip/dhcp-server/option"), inputs)),
    ]
    found: list[Drift] = []
    for name, area in areas:
        try:
            found += area()
        except RouterCommandFailed as exc:
            found.append(Drift(name, False, f"the router refused to print it: {exc.message}",
                               "give the API user's group the read policy"))
    return found


def _area(name: str, ok_detail: str, differences: Iterator[tuple[str, str]]) -> list[Drift]:
    fails = [Drift(name, False, detail, fix) for detail, fix in differences]
    return fails or [Drift(name, True, ok_detail)]


def _flag(row: Row, name: str) -> bool:
    return str(row.get(name, "false")).lower() in ("true", "yes")


def _enabled(rows: Sequence[Row]) -> list[Row]:
    return [row for row in rows if not _flag(row, "disabled") and not _flag(row, "invalid")]


# -- /radius ----------------------------------------------------------------------------
def _radius(rows: Sequence[Row], i: ScriptInputs) -> list[Drift]:
    return _area("router radius", f"{i.appliance} for the hotspot, ports {i.auth_port}/"
                 f"{i.acct_port}, require-message-auth={REQUIRE_MESSAGE_AUTH}",
                 _radius_differences(rows, i))


def _radius_differences(rows: Sequence[Row], i: ScriptInputs) -> Iterator[tuple[str, str]]:
    hotspot = [row for row in rows if "hotspot" in row.get("service", "").split(",")]
    mine = [row for row in rows if row.get("address") == i.appliance]
    if not mine:
        others = [row["address"] for row in _enabled(hotspot) if row.get("address")]
        if others:
            yield (f"the hotspot asks RADIUS at {', '.join(others)}, not this appliance"
                   f" ({i.appliance})", f"/radius set [find address={others[0]}]"
                   f" address={i.appliance}")
            return
        yield (f"no /radius entry for this appliance ({i.appliance})",
               f"/radius add address={i.appliance} secret={SECRET_HINT} service=hotspot"
               f" authentication-port={i.auth_port} accounting-port={i.acct_port} timeout=3s"
               f" require-message-auth={REQUIRE_MESSAGE_AUTH} comment=hotspotd")
        return
    row, find = mine[0], f"/radius set [find address={i.appliance}]"
    if _flag(row, "disabled"):
        yield f"the entry for {i.appliance} is disabled", \
            f"/radius enable [find address={i.appliance}]"
    if "hotspot" not in row.get("service", "").split(","):
        yield f"service={row.get('service', '')}, not hotspot", f"{find} service=hotspot"
    for name, want in (("authentication-port", i.auth_port), ("accounting-port", i.acct_port)):
        if row.get(name) != str(want):
            yield f"{name}={row.get(name)}, not {want}", f"{find} {name}={want}"
    yield from _message_auth(row, find)
    if "secret" in row and row["secret"] != i.radius_secret:
        yield "the secret is not [radius] secret", f"{find} secret={SECRET_HINT}"


def _message_auth(row: Row, find: str) -> Iterator[tuple[str, str]]:
    value = row.get("require-message-auth")
    if value is None:
        yield ("no require-message-auth (RouterOS older than 7.15: BlastRADIUS,"
               " CVE-2024-3596)", "/system package update install; then"
               f" {find} require-message-auth={REQUIRE_MESSAGE_AUTH}")
    elif value != REQUIRE_MESSAGE_AUTH:
        yield (f"require-message-auth={value}: replies without Message-Authenticator are"
               " accepted (BlastRADIUS)", f"{find} require-message-auth={REQUIRE_MESSAGE_AUTH}")


# -- /radius incoming -------------------------------------------------------------------
def _incoming(rows: Sequence[Row], i: ScriptInputs) -> list[Drift]:
    row = rows[0] if rows else {}
    fix = f"/radius incoming set accept=yes port={i.coa_port}"

    def differences() -> Iterator[tuple[str, str]]:
        if not _flag(row, "accept"):
            yield "/radius incoming accept=no: CoA and Disconnect are ignored", fix
        if row.get("port") != str(i.coa_port):
            yield (f"/radius incoming port={row.get('port')}, not [router] coa_port"
                   f" {i.coa_port}", fix)
    return _area("router coa", f"/radius incoming accept=yes port={i.coa_port}",
                 differences())


# -- /ip hotspot, /ip hotspot profile ---------------------------------------------------
def _profile(servers: Sequence[Row], profiles: Sequence[Row], i: ScriptInputs) -> list[Drift]:
    by_name = {row.get("name", ""): row for row in profiles}
    return _area("router hotspot profile", f"the hotspot on {i.interface} uses profile"
                 f" {PROFILE}: use-radius, MAC login, interim updates",
                 _profile_differences(servers, by_name, i))


def _profile_differences(servers: Sequence[Row], profiles: Mapping[str, Row],
                         i: ScriptInputs) -> Iterator[tuple[str, str]]:
    on_interface = [row for row in servers if row.get("interface") == i.interface]
    if not on_interface:
        yield (f"no hotspot server on {i.interface}", f"/ip hotspot setup (on {i.interface}),"
               f" then /ip hotspot set [find interface={i.interface}] profile={PROFILE}")
    mine = profiles.get(PROFILE)
    for server in on_interface:
        if server.get("profile") != PROFILE:
            yield (f"hotspot server {server.get('name')} uses profile"
                   f" {server.get('profile')}, not {PROFILE}",
                   f"/ip hotspot set [find name={server.get('name')}] profile={PROFILE}")
    if mine is None:
        yield (f"no hotspot profile {PROFILE}", f"/ip hotspot profile add name={PROFILE}"
               f" use-radius=yes radius-interim-update={INTERIM_UPDATE} radius-accounting=yes"
               f" login-by={LOGIN_BY} mac-auth-mode={MAC_AUTH_MODE}"
               ' mac-auth-password="<the [radius] mac_password>"')
        return
    yield from _profile_values(mine, i)


def _profile_values(row: Row, i: ScriptInputs) -> Iterator[tuple[str, str]]:
    set_ = f"/ip hotspot profile set [find name={PROFILE}]"
    if not _flag(row, "use-radius"):
        yield "use-radius=no: logins are not asked of this appliance", f"{set_} use-radius=yes"
    if "mac" not in row.get("login-by", "").split(","):
        yield (f"login-by={row.get('login-by')}: no MAC login, paid devices are not let in"
               " by themselves", f"{set_} login-by={LOGIN_BY}")
    if row.get("mac-auth-mode", MAC_AUTH_MODE) != MAC_AUTH_MODE:
        yield f"mac-auth-mode={row.get('mac-auth-mode')}", f"{set_} mac-auth-mode={MAC_AUTH_MODE}"
    if "mac-auth-password" in row and row["mac-auth-password"] != i.mac_password:
        yield ("mac-auth-password is not [radius] mac_password",
               f'{set_} mac-auth-password="<the [radius] mac_password>"')
    if not _flag(row, "radius-accounting"):
        yield "radius-accounting=no: no usage reaches this appliance", \
            f"{set_} radius-accounting=yes"
    if row.get("radius-interim-update") != INTERIM_UPDATE:
        yield (f"radius-interim-update={row.get('radius-interim-update')}, not"
               f" {INTERIM_UPDATE}", f"{set_} radius-interim-update={INTERIM_UPDATE}")


# -- walled garden, NAT, DHCP option 114 ------------------------------------------------
def _garden(rows: Sequence[Row], i: ScriptInputs) -> list[Drift]:
    def differences() -> Iterator[tuple[str, str]]:
        for row in _enabled(rows):
            if row.get("action", "accept") == "accept" and not row.get("src-address") \
                    and covers(row.get("dst-address", ""), i.appliance):
                return
        yield (f"the appliance ({i.appliance}) is not in the walled garden: customers who"
               " have not paid cannot reach the portal", "/ip hotspot walled-garden ip add"
               f" dst-address={i.appliance} action=accept comment=hotspotd")
    return _area("router walled garden", f"{i.appliance} accepted before login",
                 differences())


def _nat(rows: Sequence[Row], i: ScriptInputs) -> Drift:
    finding = judge_nat(rows, i.appliance)
    fix = "" if finding.ok else nat_exception_command(i.appliance)
    return Drift("router nat", finding.ok, finding.detail, fix)


def capport_url(i: ScriptInputs) -> str:
    return f"{i.portal_url}{CAPTIVE_API_PATH}"


def _capport(rows: Sequence[Row], i: ScriptInputs) -> list[Drift]:
    url = capport_url(i)

    def differences() -> Iterator[tuple[str, str]]:
        options = [row for row in rows if row.get("code") == "114"]
        if not options:
            yield ("no DHCP option 114: phones are not told the captive-portal API",
                   f"/ip dhcp-server option add code=114 name={CAPPORT_OPTION}"
                   f" value=\"'{url}'\"; /ip dhcp-server option sets add name=hotspotd"
                   f" options={CAPPORT_OPTION}; /ip dhcp-server network set [find]"
                   " dhcp-option-set=hotspotd")
            return
        shown = _option_text(options[0])
        if shown != url:
            yield (f"DHCP option 114 is {shown!r}, not {url!r}",
                   f"/ip dhcp-server option set [find code=114] value=\"'{url}'\"")
    return _area("router dhcp option 114", url, differences())


def _option_text(row: Row) -> str:
    value = row.get("value", "")
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    try:
        return bytes.fromhex(row.get("raw-value", "")).decode()
    except (ValueError, UnicodeDecodeError):
        return value
