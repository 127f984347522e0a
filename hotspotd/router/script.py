"""The RouterOS script that sets a MikroTik router up for this appliance.

Rendered from the configuration only (no router needed): RADIUS client, hotspot profile
using RADIUS with MAC login and interim updates, `/radius incoming` for CoA on the
configured port, `require-message-auth`, walled garden for the appliance, a `srcnat`
accept for traffic to the appliance placed before any masquerade (so the portal sees each
phone's own address and can place it; see `router.nat`), a least-privilege API user, DHCP
option 114 (RFC 8910) with the captive-portal API URL, and the router-side login page that
hands customers to the appliance's portal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hotspotd.config import Config
from hotspotd.resources import data_dir
from hotspotd.router.nat import nat_exception_command

CAPTIVE_API_PATH = "/captive-portal/api"
API_POLICY = "read,write,api,!local,!telnet,!ssh,!ftp,!reboot,!policy,!test,!winbox," \
             "!password,!web,!sniff,!sensitive,!romon"
_UNSAFE = re.compile(r'["\\$\n\r]')
# What the script sets, as data (`router.drift` compares a router's configuration with it).
PROFILE = "hotspotd"
LOGIN_BY = "mac,http-chap,http-pap"
INTERIM_UPDATE = "received"
MAC_AUTH_MODE = "mac-as-username"
REQUIRE_MESSAGE_AUTH = "yes-for-request-resp"
CAPPORT_OPTION = "capport"


@dataclass(frozen=True)
class ScriptInputs:
    appliance: str
    portal_url: str
    radius_secret: str
    mac_password: str
    auth_port: int
    acct_port: int
    coa_port: int
    interim_seconds: int
    api_user: str
    api_password: str
    api_service: str
    interface: str


def inputs_from(config: Config, *, placeholders: bool = False) -> ScriptInputs:
    """What the script needs; with `placeholders`, secrets are left as `<...>` to fill in."""
    web, radius, router = config.web, config.radius, config.router
    appliance = router.appliance_address
    portal = web.public_url.rstrip("/") if web.public_url else f"http://{appliance}:{web.port}"
    return ScriptInputs(
        appliance=appliance, portal_url=portal,
        radius_secret="<radius secret>" if placeholders else (router.radius_secret
                                                               or radius.secret),
        mac_password="<mac password>" if placeholders else radius.mac_password,
        auth_port=radius.auth_port, acct_port=radius.acct_port, coa_port=router.coa_port,
        interim_seconds=radius.interim_interval_seconds, api_user=router.user,
        api_password="<api password>" if placeholders else router.password,
        api_service="api-ssl" if router.use_tls else "api", interface=router.hotspot_interface)


def quote(value: str) -> str:
    """A RouterOS string literal; refuses characters a script could be tricked with."""
    if _UNSAFE.search(value):
        raise ValueError("value contains a quote, backslash, $ or newline; not allowed in"
                         " a RouterOS script")
    return f'"{value}"'


def render_script(i: ScriptInputs) -> str:
    """The script, ready to paste into a RouterOS terminal (7.15 or later)."""
    capport = f"{i.portal_url}{CAPTIVE_API_PATH}"
    return "\n".join([
        "# hotspotd: RouterOS set-up (RouterOS >= 7.15). Paste into a terminal.",
        "# Then upload the files of portal/router/ to the router's hotspot/ directory.",
        "/radius",
        f"add address={i.appliance} secret={quote(i.radius_secret)} service=hotspot"
        f" authentication-port={i.auth_port} accounting-port={i.acct_port}"
        " timeout=3s comment=hotspotd",
        "/radius incoming",
        f"set accept=yes port={i.coa_port}",
        "/radius",
        f"set require-message-auth={REQUIRE_MESSAGE_AUTH} [find comment=hotspotd]",
        "/ip hotspot profile",
        f"add name={PROFILE} use-radius=yes radius-interim-update={INTERIM_UPDATE}"
        f" radius-accounting=yes login-by={LOGIN_BY}"
        f" mac-auth-mode={MAC_AUTH_MODE} mac-auth-password="
        f"{quote(i.mac_password)} html-directory=hotspot",
        "/ip hotspot",
        f"set [find interface={i.interface}] profile={PROFILE}",
        "/ip hotspot walled-garden ip",
        f"add dst-address={i.appliance} action=accept comment=hotspotd",
        "/ip hotspot walled-garden",
        f"add dst-host={_host_of(i.portal_url)} action=allow comment=hotspotd",
        "# Customers' traffic to the appliance keeps their own addresses (before masquerade).",
        nat_exception_command(i.appliance),
        "/user group",
        f"add name=hotspotd policy={API_POLICY} comment=hotspotd",
        "/user",
        f"add name={quote(i.api_user)} group=hotspotd password={quote(i.api_password)}"
        f" address={i.appliance}/32 comment=hotspotd",
        "/ip service",
        f"set {i.api_service} disabled=no address={i.appliance}/32",
        "# RFC 8908 wants https for the captive-portal API: set [web] public_url to one.",
        "/ip dhcp-server option",
        f"add code=114 name={CAPPORT_OPTION} value=\"'{capport}'\"",
        "/ip dhcp-server option sets",
        "add name=hotspotd options=capport",
        "/ip dhcp-server network",
        "set [find] dhcp-option-set=hotspotd",
        "",
    ])


def _host_of(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]


PORTAL_PLACEHOLDER = "__HOTSPOTD_PORTAL_URL__"
ROUTER_PAGES = ("login.html", "alogin.html", "logout.html")


def render_router_page(name: str, portal_url: str) -> str:
    """A router-side hotspot page from `portal/router/`, with the portal's URL filled in."""
    if name not in ROUTER_PAGES:
        raise ValueError(f"unknown router page {name!r}; one of {', '.join(ROUTER_PAGES)}")
    template = (data_dir("portal") / "router" / name).read_text()
    return template.replace(PORTAL_PLACEHOLDER, portal_url)
