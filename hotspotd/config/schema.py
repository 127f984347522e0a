"""Every configuration option, defined once: section, name, default, converter, help."""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

ENV_PREFIX = "HOTSPOTD_"
MASK = "***"
SHORT_REPR = reprlib.Repr()
SHORT_REPR.maxstring, SHORT_REPR.maxlist = 60, 8


class ConfigError(Exception):
    """A configuration problem, described in one line naming file, section and key."""


# --- converters ----------------------------------------------------------------------


@dataclass(frozen=True)
class Converter:
    """Checks a TOML value (`check`); `parse_env` first turns an environment string into one.

    Bad input raises ValueError, TypeError or KeyError; the loader turns that into a
    ConfigError saying `expected <expected>, got <value>`.
    """

    expected: str
    kind: type | tuple[type, ...]  # the TOML types accepted; bool never counts as a number
    accept: Callable[[Any], bool] = lambda value: True
    parse_env: Callable[[str], Any] = str
    env_expected: str = ""
    cast: Callable[[Any], Any] = lambda value: value
    item: Converter | None = None  # for lists: the converter of each element

    def check(self, value: Any) -> Any:
        if isinstance(value, bool) is not (self.kind is bool) or not isinstance(value, self.kind):
            raise TypeError(value)
        if self.item is not None:
            value = tuple(self.item.check(element) for element in value)
        if not self.accept(value):
            raise ValueError(value)
        return self.cast(value)


_BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}

PORT = Converter("an integer 0-65535", int, lambda number: 0 <= number <= 65535, int)
POSITIVE_INT = Converter("a positive integer", int, lambda number: number >= 1, int)
NON_NEGATIVE_FLOAT = Converter("a non-negative number", (int, float),
                               lambda number: math.isfinite(number) and number >= 0, float,
                               cast=float)
BOOL = Converter("true or false", bool, parse_env=lambda text: _BOOL_WORDS[text.strip().lower()],
                 env_expected="true, false, yes, no, 1 or 0")
STR = Converter("a string", str)
NON_EMPTY_STR = Converter("a non-empty string", str, lambda text: bool(text.strip()))


def list_of(item: Converter, items: str, *, non_empty: bool = False) -> Converter:
    """A list (a tuple once loaded) of `item`; from the environment, comma-separated."""
    expected = f"a {'non-empty ' if non_empty else ''}list of {items}"

    def parse_env(text: str) -> list[Any]:
        return [item.parse_env(piece.strip()) for piece in text.split(",") if piece.strip()]

    return Converter(expected, (list, tuple), lambda value: bool(value) or not non_empty,
                     parse_env, expected + ", comma-separated", item=item)


STR_LIST = list_of(NON_EMPTY_STR, "non-empty strings")


def float_list(*, non_empty: bool = False) -> Converter:
    """A list of non-negative numbers (a tuple of floats once loaded)."""
    return list_of(NON_NEGATIVE_FLOAT, "non-negative numbers", non_empty=non_empty)


def enum(*choices: str) -> Converter:
    """One of the given strings."""
    return Converter("one of " + ", ".join(f'"{c}"' for c in choices), str, choices.__contains__)


def url(*, optional: bool = False) -> Converter:
    """An http:// or https:// URL with a host; the empty string too if `optional`."""
    return Converter(
        ("empty or " if optional else "") + "an http:// or https:// URL", str,
        lambda text: (optional and text == "") or (
            text.startswith(("http://", "https://")) and bool(urlsplit(text).hostname)),
    )


def digits(*, optional: bool = False) -> Converter:
    """A string of ASCII digits (e.g. a shortcode); the empty string too if `optional`."""
    return Converter(("empty or " if optional else "") + "a string of digits", str,
                     lambda text: (optional and text == "") or (text.isascii() and text.isdigit()))


ROUTER_NAME = Converter("a name of 1-32 lower-case letters, digits, - or _", str,
                        lambda text: bool(re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", text)))


def short_text(max_length: int) -> Converter:
    """A non-empty string of at most `max_length` characters."""
    return Converter(f"a non-empty string of at most {max_length} characters", str,
                     lambda text: bool(text.strip()) and len(text) <= max_length)


# --- the schema ----------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One configuration option: `[section] name`, its default, converter and help."""

    section: str
    name: str
    default: Any
    convert: Converter
    help: str
    secret: bool = False

    @property
    def env_var(self) -> str:
        return f"{ENV_PREFIX}{self.section.upper()}_{self.name.upper()}"

    @property
    def key(self) -> str:
        return f"[{self.section}] {self.name}"


SECTIONS: dict[str, str] = {
    "web": "HTTP server: captive portal, owner UI, M-Pesa callbacks, ops endpoints.",
    "database": "SQLite database.",
    "security": "Encryption of secrets at rest.",
    "venue": "How the hotspot presents itself to customers.",
    "logging": "Logging.",
    "daraja": "Safaricom Daraja API (M-Pesa Express / STK push).",
    "settlement": "How pending payments are settled: STK status queries and expiry.",
    "radius": "RADIUS server the MikroTik hotspot authenticates against.",
    "router": "RouterOS API connection to the MikroTik router.",
    "simulators": 'Embedded simulators, started for any backend = "simulator".',
    "admin": "The venue owner's web UI under /admin/ (the management side).",
    "backup": "Scheduled backups of the database (SQLite online backup, with rotation).",
    "privacy": "Personal data (Kenya Data Protection Act): how long phone numbers are kept.",
    "alerts": "Owner alerts (router unreachable, Daraja failing, payments failing, disk low)"
              " and optional SMS receipts to customers.",
    "portal": "The captive portal customers see: live status, vouchers, recovery.",
    "limits": "Abuse limits on STK pushes (anyone on the WiFi can reach the portal).",
    "c2b": "Payments made from the M-Pesa menu (C2B): validation and Pull Transactions.",
    "hub": "Shipping the ledger to an operator's hub (`hotspotd hub enroll`; docs/HUB.md).",
}

_DARAJA_CHOICES = enum("daraja", "simulator")
# The listeners' limits (hotspotd/http_limits.py): deadlines are checked once a second.
_LISTENER_SECONDS = Converter("a number of seconds, at least 1", (int, float),
                              lambda number: math.isfinite(number) and number >= 1, float,
                              cast=float)
_LISTENER_BYTES = Converter("an integer of at least 1024", int, lambda number: number >= 1024,
                            int)

SCHEMA: tuple[Option, ...] = (
    Option("web", "host", "0.0.0.0", NON_EMPTY_STR,
           "Listen address for the portal, the owner UI and the M-Pesa callbacks."),
    Option("web", "port", 8080, PORT, "Listen port; 0 picks a free port."),
    Option("web", "public_url", "", url(optional=True),
           "Externally reachable https base URL that Daraja can POST callbacks to. Empty: "
           "callbacks are off and payments settle by STK Query only."),
    Option("web", "callback_token", "", STR,
           "Secret path segment of the callback URLs, so only Daraja knows where to POST. "
           "If empty, a random token is generated at every start.", secret=True),
    Option("web", "trusted_proxies", (), list_of(NON_EMPTY_STR, "addresses or networks"),
           "Reverse proxies in front of the portal whose X-Forwarded-For names the customer's"
           " address. Nobody else's is believed: a request is placed by its source address."),
    Option("web", "neighbour_table", False, BOOL,
           "Also place devices by this machine's own neighbour (ARP) table, when the"
           " appliance shares the hotspot's network; the router's host table comes first."),
    Option("web", "host_cache_seconds", 10.0, NON_NEGATIVE_FLOAT,
           "How long the router's answer to \"which device is at this address\" is reused"
           " for pages that only read. Purchases, vouchers and recovery always ask afresh."),
    Option("web", "connections_per_client", 20, POSITIVE_INT,
           "Open connections one source address may hold on a listener; its next ones are"
           " closed as soon as they are accepted (a phone's browser uses about 6). Addresses"
           " in [web] and [daraja] trusted_proxies are not capped."),
    Option("web", "max_connections", 500, POSITIVE_INT,
           "Open connections per listener, all clients together; past it new ones wait in"
           " the kernel's queue. Keep it well below the unit's LimitNOFILE (4096)."),
    Option("web", "header_timeout_seconds", 10.0, _LISTENER_SECONDS,
           "A request's headers must arrive within this long of their first byte, however"
           " slowly they trickle; otherwise the connection is closed."),
    Option("web", "body_timeout_seconds", 30.0, _LISTENER_SECONDS,
           "A request's body must arrive within this long of the end of its headers."),
    Option("web", "idle_timeout_seconds", 15.0, _LISTENER_SECONDS,
           "A connection with no request in progress (kept alive, or silent since it"
           " opened) is closed after this long."),
    Option("web", "max_body_bytes", 65536, _LISTENER_BYTES,
           "Largest request body; a larger one is refused (413) as soon as its"
           " Content-Length (or chunked data) shows it, without reading the rest."),
    Option("web", "max_header_bytes", 16384, _LISTENER_BYTES,
           "Largest request line plus headers; more is refused (431)."),
    Option("database", "path", "/var/lib/hotspotd/hotspotd.sqlite3", NON_EMPTY_STR,
           "SQLite database file; its directory must be writable (WAL mode)."),
    Option("security", "key_file", "/etc/hotspotd/secret.key", NON_EMPTY_STR,
           "32-byte key (mode 0600, created by `hotspotd init`) that encrypts the secrets"
           " stored in the database. Keep it out of database backups' reach."),
    Option("venue", "name", "WiFi Hotspot", Converter(
        "a non-empty string of at most 60 characters", str,
        lambda text: bool(text.strip()) and len(text) <= 60),
           "Venue name shown on the portal, the voucher sheet and in payment prompts (60"
           " characters at most: it heads a phone screen and every voucher)."),
    Option("venue", "portal_text", "", Converter(
        "a string of at most 500 characters", str, lambda text: len(text) <= 500),
           "A short note shown on the portal's plans page and on printed vouchers (opening"
           " hours, where to ask for help). Editable in the owner UI's Settings."),
    Option("logging", "level", "info", enum("debug", "info", "warning", "error"),
           "Log level."),
    Option("daraja", "backend", "daraja", _DARAJA_CHOICES,
           '"daraja" talks to base_url; "simulator" starts the embedded Daraja simulator '
           "and points the client at it."),
    Option("daraja", "base_url", "https://sandbox.safaricom.co.ke", url(),
           "Daraja API base URL: the sandbox, or https://api.safaricom.co.ke in production."),
    Option("daraja", "consumer_key", "", STR,
           "Daraja app consumer key. Required when backend = \"daraja\".", secret=True),
    Option("daraja", "consumer_secret", "", STR,
           "Daraja app consumer secret. Required when backend = \"daraja\".", secret=True),
    Option("daraja", "shortcode", "174379", digits(),
           "Business shortcode (BusinessShortCode); 174379 is the sandbox paybill."),
    Option("daraja", "passkey", "", STR,
           "Lipa na M-Pesa Online passkey. Required when backend = \"daraja\".", secret=True),
    Option("daraja", "transaction_type", "paybill", enum("paybill", "till"),
           '"paybill" (CustomerPayBillOnline) or "till" (CustomerBuyGoodsOnline).'),
    Option("daraja", "till_number", "", digits(optional=True),
           'Till number used as PartyB for till payments; required when transaction_type '
           '= "till".'),
    Option("daraja", "account_reference", "WIFI", short_text(12),
           "AccountReference shown to the customer (at most 12 characters)."),
    Option("daraja", "timeout_seconds", 10.0, NON_NEGATIVE_FLOAT,
           "Timeout of each HTTP request to Daraja."),
    Option("settlement", "inline_query_delays", (2.0, 4.0), float_list(),
           "Seconds after the push at which the purchase request path queries the STK "
           "status, in the background. Empty: leave it all to the reconciler."),
    Option("settlement", "reconcile_interval_seconds", 5, POSITIVE_INT,
           "How often the reconciler looks for pending payments."),
    Option("settlement", "query_backoff_seconds", (3.0, 5.0, 10.0, 20.0, 30.0),
           float_list(non_empty=True),
           "Delays between successive STK queries of one payment; the last one repeats."),
    Option("settlement", "pending_expiry_seconds", 180, POSITIVE_INT,
           "A payment with no final answer this long after its push ends as expired."),
    Option("settlement", "queue_max_seconds", 300, POSITIVE_INT,
           "A purchase waiting in line for the Daraja budget whose push was not sent within"
           " this long ends expired (no prompt sent, nothing charged)."),
    Option("daraja", "requests_per_minute", 100, POSITIVE_INT,
           "Budget shared by ALL Daraja requests of the appliance (OAuth, pushes, queries,"
           " C2B, Pull), in two first-come lines: settlement (STK Query, Pull) takes two"
           " slots for each one of new work (pushes, registrations) when both wait."
           " Spike-arrest and quota answers pause it with a doubling backoff. Editable in"
           " the owner UI's Settings (limits)."),
    Option("daraja", "push_max_wait_seconds", 1.0, NON_NEGATIVE_FLOAT,
           "How long a purchase request waits for a slot of the budget before its payment is"
           " put in line (stored, the customer told the prompt comes shortly, pushed in"
           " arrival order). Keep it short: a waiting request holds a web server thread."),
    Option("daraja", "callback_allowlist", (), list_of(NON_EMPTY_STR, "addresses or networks"),
           "Addresses/networks (e.g. 196.201.214.200, 196.201.212.0/24) whose callbacks are"
           " trusted. Empty: any source may post, and every STK callback is confirmed by STK"
           " Query before it grants. Non-empty: other sources are refused (403, stored)."),
    Option("daraja", "trusted_proxies", (), list_of(NON_EMPTY_STR, "addresses or networks"),
           "Reverse proxies / tunnel ends whose X-Forwarded-For is believed when deciding a"
           " callback's source. Nobody else's is."),
    Option("limits", "push_per_device", 5, POSITIVE_INT,
           "Unpaid purchases (STK prompts) one device may start per window; paid ones do"
           " not count. The device is the one the network places the request at."),
    Option("limits", "push_per_phone", 5, POSITIVE_INT,
           "Unpaid STK prompts one phone number may receive per window, from all devices."),
    Option("limits", "push_window_seconds", 3600, POSITIVE_INT,
           "The (sliding) window of push_per_device and push_per_phone."),
    Option("limits", "cancel_limit", 3, POSITIVE_INT,
           "After this many prompts one number cancelled or left unanswered (1032, 1037,"
           " 1019, or expired without an answer), it gets no prompt until the cooldown ends."),
    Option("limits", "cancel_cooldown_seconds", 1800, POSITIVE_INT,
           "The cooldown (and counting window) of cancel_limit."),
    Option("limits", "open_per_device", 1, POSITIVE_INT,
           "Open purchases (in line or waiting for the customer's PIN) one device may have;"
           " the same purchase again returns the open one instead of a second prompt."),
    Option("limits", "line_max", 0, Converter(
        "a non-negative integer", int, lambda number: number >= 0, int),
           "Most purchases waiting in line for the Daraja budget; a purchase beyond it is"
           " refused (429, nothing stored). 0: as many as the budget can push within"
           " [settlement] queue_max_seconds (2 requests a place)."),
    Option("c2b", "validation", True, BOOL,
           "Answer C2B validation requests by refusing unknown account numbers (C2B00012) and"
           " amounts below the cheapest plan (C2B00013). Safaricom only calls it when"
           " external validation is enabled on the shortcode."),
    Option("c2b", "response_type", "Completed", enum("Completed", "Cancelled"),
           "What M-Pesa does when validation cannot be reached (register-c2b)."),
    Option("c2b", "pull_interval_seconds", 300, Converter(
        "a non-negative integer", int, lambda number: number >= 0, int),
           "How often Pull Transactions fetches the last 48 h of C2B payments to fill in"
           " confirmations that never arrived; 0 turns Pull off."),
    Option("c2b", "verify_within_seconds", 900, POSITIVE_INT,
           "A C2B confirmation from a source outside [daraja] callback_allowlist grants only"
           " once Pull Transactions lists its TransID; one still unlisted after this long is"
           " rejected (stored with why), or held for the owner if Daraja could not be asked."),
    Option("c2b", "pull_nominated_number", "", STR,
           "NominatedNumber for the Pull Transactions registration (the owner's M-Pesa"
           " number, as Safaricom requires)."),
    Option("radius", "host", "0.0.0.0", NON_EMPTY_STR, "Listen address of the RADIUS server."),
    Option("radius", "auth_port", 1812, PORT, "Authentication port (UDP); 0 picks a free port."),
    Option("radius", "acct_port", 1813, PORT, "Accounting port (UDP); 0 picks a free port."),
    Option("radius", "secret", "", STR,
           "RADIUS shared secret, as set on the router (/radius secret=).", secret=True),
    Option("radius", "mac_password", "", STR,
           "Password the router sends for MAC logins; must match the router's hotspot "
           "profile (mac-auth-password).", secret=True),
    Option("radius", "clients", ("192.168.88.1",), STR_LIST,
           "Addresses of the routers allowed to send RADIUS requests."),
    Option("radius", "interim_interval_seconds", 120, POSITIVE_INT,
           "Acct-Interim-Interval sent to the router in Access-Accept."),
    Option("radius", "require_message_authenticator", True, BOOL,
           "Drop Access-Requests without a valid Message-Authenticator (BlastRADIUS; the"
           " router script sets require-message-auth). Off only for a router older than"
           " RouterOS 7.15."),
    Option("router", "backend", "routeros", enum("routeros", "simulator"),
           '"routeros" talks to host:api_port; "simulator" starts the embedded RouterOS '
           "simulator and points the client at it."),
    Option("router", "host", "192.168.88.1", NON_EMPTY_STR, "Router address for the API."),
    Option("router", "api_port", 8728, PORT, "RouterOS API port (8729 for API over TLS)."),
    Option("router", "user", "hotspotd", NON_EMPTY_STR, "RouterOS API user."),
    Option("router", "password", "", STR,
           'RouterOS API password. Required when backend = "routeros".', secret=True),
    Option("router", "use_tls", False, BOOL, "Connect to the API over TLS (api-ssl)."),
    Option("router", "timeout_seconds", 5.0, NON_NEGATIVE_FLOAT,
           "Timeout of each RouterOS API call."),
    Option("router", "tls_verify", True, BOOL,
           "Verify the router's api-ssl certificate (turn off only for a self-signed one on a"
           " trusted LAN)."),
    Option("router", "tls_ca_file", "", STR,
           "PEM file to verify the router's api-ssl certificate against instead of the system's"
           " authorities: export the router's self-signed certificate and pin it here."),
    Option("router", "coa_port", 3799, PORT,
           "UDP port of the router's /radius incoming listener (CoA, Disconnect). RouterOS's"
           " default is 1700; the script from `hotspotd routeros-script` sets this one."),
    Option("router", "coa_timeout_seconds", 1.0, NON_NEGATIVE_FLOAT,
           "How long to wait for a CoA/Disconnect answer before one retransmission; no answer"
           " after that falls back to the RouterOS API."),
    Option("router", "enforce_interval_seconds", 2.0, NON_NEGATIVE_FLOAT,
           "How often online devices whose time ran out are looked for and disconnected."),
    Option("router", "reconcile_interval_seconds", 15, POSITIVE_INT,
           "How often the router's active hosts are compared with the database and drift fixed"
           " both ways."),
    Option("router", "appliance_address", "192.168.88.2", NON_EMPTY_STR,
           "This appliance's address as the router reaches it (RADIUS client, walled garden,"
           " portal links in `hotspotd routeros-script`)."),
    Option("router", "hotspot_interface", "bridge", NON_EMPTY_STR,
           "Router interface the hotspot serves (used by `hotspotd routeros-script`)."),
    Option("router", "name", "main", ROUTER_NAME,
           "This router's name in logs, the self-test and the owner UI. More routers of"
           " this appliance: one [routers.<name>] table each, with the options of [router]"
           " (not from the environment)."),
    Option("router", "radius_client", "", STR,
           "The address this router sends RADIUS from. Empty: [radius] clients for the"
           " first router, `host` for each [routers.<name>]."),
    Option("router", "radius_secret", "", STR,
           "This router's RADIUS secret (also for CoA). Empty: [radius] secret.",
           secret=True),
    Option("router", "hotspot_server", "", STR,
           "The router's hotspot server name (`/ip hotspot`), for the self-test; empty:"
           " any."),
    Option("simulators", "host", "127.0.0.1", NON_EMPTY_STR,
           "Where the embedded simulators listen."),
    Option("simulators", "daraja_port", 0, PORT,
           "Port of the Daraja simulator; 0 picks a free port."),
    Option("simulators", "router_api_port", 0, PORT,
           "Port of the RouterOS API simulator; 0 picks a free port."),
    Option("simulators", "router_coa_port", 0, PORT,
           "Port of the router simulator's CoA/Disconnect listener; 0 picks a free port."),
    Option("simulators", "approve_delay_seconds", 2.0, NON_NEGATIVE_FLOAT,
           "How long the sandbox test number 254708374149 takes to approve by itself."),
    Option("admin", "utc_offset_minutes", 180, Converter(
        "an integer -720..840", int, lambda number: -720 <= number <= 840, int),
           "The venue's time zone as minutes east of UTC (Kenya: 180): where the owner UI's"
           " days and hours begin."),
    Option("admin", "login_attempts", 5, POSITIVE_INT,
           "Wrong passwords allowed per username from one address (and 4x that per address"
           " for all usernames) before that address waits; other addresses are not affected,"
           " so nobody on the WiFi can lock the owner out. Also wrong set-up codes per"
           " address."),
    Option("admin", "lockout_seconds", 900, POSITIVE_INT,
           "How long an address waits after too many wrong passwords or set-up codes."),
    Option("admin", "session_hours", 12, POSITIVE_INT,
           "An owner UI login lasts this long."),
    Option("admin", "host", "", STR,
           "The management side: listen address of a listener of its own for the owner UI,"
           " /metrics and the detail of /healthz (e.g. an address on the office network, or"
           " 127.0.0.1 behind an SSH tunnel); the customers' listener then answers 404 for"
           " /admin/ and /metrics. Empty: the owner UI shares the portal's listener, where"
           " anyone on the WiFi can reach its login page (passwords and the login limits"
           " still hold; /metrics and the detail of /healthz need metrics_token there)."),
    Option("admin", "port", 8081, PORT,
           "Port of the management listener (with host set); 0 picks a free port."),
    Option("admin", "metrics_token", "", STR,
           "Bearer token for /metrics and the detail of /healthz on the portal's listener"
           " (Authorization: Bearer <token>). Empty: generated once and kept in the data"
           " directory's generated-secrets.json.", secret=True),
    Option("admin", "setup_code_hours", 24, POSITIVE_INT,
           "While no owner account exists, `hotspotd init`, `run` and `demo` print a one-time"
           " set-up code; the owner UI's first-run page asks for it. It expires after this"
           " many hours (a restart prints a new one)."),
    Option("backup", "enabled", True, BOOL, "Take a backup of the database every interval."),
    Option("backup", "directory", "", STR,
           "Where scheduled backups go; empty: `backups/` beside the database."),
    Option("backup", "interval_hours", 24, POSITIVE_INT, "Hours between scheduled backups."),
    Option("backup", "keep", 7, POSITIVE_INT,
           "How many scheduled backups to keep; older ones are deleted."),
    Option("privacy", "retention_days", 365, POSITIVE_INT,
           "Phone numbers and names are erased from payments settled longer ago than this"
           " (amounts and M-Pesa receipts are kept for the books). Checked daily."),
    Option("alerts", "backend", "log", enum("log", "sms", "email", "sms-simulator"),
           '"log": alerts are only logged; "sms": also sent by SMS through Africa\'s Talking;'
           ' "email": also sent by e-mail over SMTP; "sms-simulator": SMS to an embedded'
           " Africa's Talking simulator (the demo), whose page lists what was sent."),
    Option("alerts", "recipients", (), list_of(NON_EMPTY_STR, "phone numbers or e-mail"
                                                " addresses"),
           "Who gets alerts: phone numbers (sms) or e-mail addresses (email)."),
    Option("alerts", "repeat_minutes", 60, POSITIVE_INT,
           "An alert that stays true is sent again at most this often."),
    Option("alerts", "check_interval_seconds", 60, POSITIVE_INT,
           "How often the alert conditions are evaluated."),
    Option("alerts", "router_stuck_seconds", 300, POSITIVE_INT,
           "Alert when a router change has waited this long (router unreachable)."),
    Option("alerts", "daraja_failures", 3, POSITIVE_INT,
           "Alert when this many STK pushes in a row were refused or timed out."),
    Option("alerts", "payment_failure_ratio", 0.5, NON_NEGATIVE_FLOAT,
           "Alert when more than this share of the last hour's settled payments failed."),
    Option("alerts", "payment_failure_minimum", 10, POSITIVE_INT,
           "...counting only once the last hour has at least this many settled payments."),
    Option("alerts", "disk_free_mb", 200, POSITIVE_INT,
           "Alert when the data directory's file system has less free space than this."),
    Option("alerts", "sms_base_url", "https://api.africastalking.com", url(),
           "Africa's Talking API base URL (https://api.sandbox.africastalking.com to test)."),
    Option("alerts", "sms_username", "", STR, "Africa's Talking application username."),
    Option("alerts", "sms_api_key", "", STR, "Africa's Talking API key.", secret=True),
    Option("alerts", "sms_sender", "", STR, "Sender ID or short code; empty: the default."),
    Option("alerts", "customer_receipts", False, BOOL,
           "Also send each paying customer an SMS receipt (needs backend = \"sms\")."),
    Option("alerts", "email_host", "localhost", NON_EMPTY_STR, "SMTP server."),
    Option("alerts", "email_port", 587, PORT, "SMTP port."),
    Option("alerts", "email_starttls", True, BOOL, "Use STARTTLS."),
    Option("alerts", "email_user", "", STR, "SMTP user; empty: no login."),
    Option("alerts", "email_password", "", STR, "SMTP password.", secret=True),
    Option("alerts", "email_from", "hotspotd@localhost", NON_EMPTY_STR, "Sender address."),
    Option("portal", "long_poll_seconds", 20.0, NON_NEGATIVE_FLOAT,
           "How long a live-status request waits for a change before answering anyway."),
    Option("portal", "live_waiters", 4, POSITIVE_INT,
           "At most this many live-status requests wait at once (each holds a web thread)."),
    Option("portal", "router_login_fallback", True, BOOL,
           "When the daemon's own router login has not worked a few seconds after payment,"
           " let the paying device post the router's login form (CHAP computed here)."),
    Option("portal", "voucher_attempts", 10, POSITIVE_INT,
           "Voucher codes one device or address may try per attempt window."),
    Option("portal", "recovery_attempts", 5, POSITIVE_INT,
           "Receipt recoveries one device or address may try per attempt window."),
    Option("portal", "attempt_window_seconds", 900, POSITIVE_INT,
           "The window of the voucher and recovery attempt limits."),
    Option("hub", "enabled", False, BOOL,
           "Ship payments, grants, vouchers, devices and health to the hub this appliance"
           " was enrolled with (`hotspotd hub enroll --hub-url URL --token TOKEN`)."),
    Option("hub", "ship_interval_seconds", 5.0, _LISTENER_SECONDS,
           "How often the shipper looks for new journal rows when it is idle."),
    Option("hub", "health_interval_seconds", 60, POSITIVE_INT,
           "How often a health snapshot (devices online, payments waiting, unmatched money,"
           " router changes waiting, unshipped events) is added to the stream."),
    Option("hub", "batch_events", 500, Converter(
        "an integer 1-500", int, lambda number: 1 <= number <= 500, int),
           "Most events in one batch (the hub also caps a batch at 1 MiB)."),
    Option("hub", "timeout_seconds", 10.0, _LISTENER_SECONDS,
           "Timeout of each request to the hub."),
    Option("hub", "backoff_max_seconds", 300, POSITIVE_INT,
           "Longest wait between attempts while the hub is unreachable or refusing."),
    Option("hub", "keep_shipped_days", 7, POSITIVE_INT,
           "Shipped journal rows are kept this long, so a hub restored from a backup can be"
           " filled in again."),
)

OPTIONS: dict[tuple[str, str], Option] = {(o.section, o.name): o for o in SCHEMA}
