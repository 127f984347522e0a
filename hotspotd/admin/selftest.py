"""The self-test: each link the appliance depends on, checked, with what to fix in plain words.

Checks that need a live outside system (Daraja OAuth, router API login, CoA, clock) are
`hotspotd check`'s own (hotspotd.ops.checks), passed in by the wiring code as
`WebContext.self_test`, together with those defined here that need the running daemon:
Daraja product access (an STK Query through the daemon's own client), the last RADIUS
Access-Request the router sent, portal requests that arrived from the router's own
address (NAT: nobody can be placed) and, for the embedded simulator, the router's set-up
against the script's (`router.drift`; `check_router` does it for a real router). The
callback reachability probe (through the public URL) is made here too.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from hotspotd.config import Config
from hotspotd.daraja.errors import (
    DarajaApiError,
    DarajaAuthError,
    DarajaError,
    DarajaProtocolError,
)
from hotspotd.ops import checks
from hotspotd.ops.checks import NAT_FIX, check_router_setup
from hotspotd.ops.checks import CheckResult as Check
from hotspotd.router.gateway import RouterError, RouterGateway
from hotspotd.router.nat import nat_exception_command
from hotspotd.router.script import inputs_from
from hotspotd.store.db import Database

MIN_FREE_BYTES = 200 * 1024 * 1024
PROBE_CHECKOUT_ID = "ws_CO_hotspotd_selftest_0000"  # no such payment: a business error is OK
NO_PRODUCT_STATUSES = (401, 403, 404)
RADIUS_QUIET_SECONDS = 3600
NAT_RECENT_SECONDS = 3600  # a request from the router's address this recent fails the test
# The owner is waiting on the page: the probe waits its turn behind the reconciler's and
# Pull's requests (a slot is 0.6 s at the default 100 req/min) instead of giving up at once.
BUDGET_WAIT_SECONDS = 15.0
RADIUS_FIX = ("On the router: /radius must list this appliance's address with the same secret"
              " and service=hotspot; /ip hotspot profile must have use-radius=yes; the"
              " firewall must let UDP {port} through. Here: [radius] clients must list the"
              " router's address. `hotspotd routeros-script` prints the router's side.")


def run_self_test(db: Database, now: float, probes: Callable[[], list[Any]], *,
                  public_url: str = "") -> list[Check]:
    """This appliance's own evidence (database, disk, RADIUS seen, router outbox), callback
    reachability when a public URL is set, then the live probes of `hotspotd check` (key
    file, Daraja OAuth, router API, CoA, clock)."""
    checks = [_database(db), _disk(db), _radius_accounting(db, now), _router_outbox(db, now)]
    if public_url:
        checks.append(_callbacks_reachable(public_url))
    try:
        found = probes()
    except Exception as exc:  # a failing probe is itself a finding, never a crash
        return [*checks, Check("live checks", False, f"could not run: {exc!r}",
                               "See the daemon's log for the error.")]
    return checks + list(found)


def _callbacks_reachable(public_url: str) -> Check:
    """Daraja POSTs callbacks to the public URL: can this appliance be reached through it?"""
    url = public_url.rstrip("/") + "/healthz"
    try:
        status = requests.get(url, timeout=5).status_code
    except requests.RequestException as exc:
        return Check("callbacks reachable", False, f"{url}: {type(exc).__name__}",
                     "Check the port forward, reverse proxy or tunnel to this appliance;"
                     " payments still settle by STK Query meanwhile.")
    ok = status in (200, 503)  # 503: reachable, just unhealthy
    return Check("callbacks reachable", ok, f"{url} answered {status}",
                 "" if ok else "The public URL does not lead to this appliance.")


def _database(db: Database) -> Check:
    result = db.query_one("PRAGMA quick_check")
    ok = result is not None and result[0] == "ok"
    return Check("database", ok, "integrity OK" if ok else str(result and result[0]),
                 "" if ok else "Restore the database from the last backup.")


def _disk(db: Database) -> Check:
    usage = shutil.disk_usage(db.path.parent)
    ok = usage.free >= MIN_FREE_BYTES
    return Check("disk space", ok, f"{usage.free // (1024 * 1024)} MB free",
                 "" if ok else "Free some disk space: the database needs room to grow.")


def _radius_accounting(db: Database, now: float) -> Check:
    row = db.query_one("SELECT MAX(updated_at) FROM radius_sessions")
    last = row[0] if row else None
    if last is None:
        return Check("RADIUS accounting", False, "no accounting received yet",
                     "Check that the router's hotspot profile has radius-accounting=yes"
                     " (data used and who is online come from it).")
    minutes = int((now - last) // 60)
    return Check("RADIUS accounting", True, f"last accounting {minutes} min ago")


def radius_requests_seen(last_at: float | None, *, now: float, started_at: float,
                         auth_port: int, dropped: Mapping[str, int] | None = None) -> Check:
    """Is the router asking this appliance? The last Access-Request (kept in memory by the
    RADIUS server since the daemon started) says; a device joining the WiFi sends one."""
    name = "RADIUS from the router"
    fix = RADIUS_FIX.format(port=auth_port)
    strangers = (dropped or {}).get("unknown_client", 0)
    if strangers:
        fix = (f"{strangers} request(s) came from an address not in [radius] clients: add the"
               " router's address there (the address it sends from). " + fix)
    if last_at is None:
        minutes = int((now - started_at) // 60)
        return Check(name, False, f"no Access-Request from the router since the daemon"
                     f" started {minutes} min ago",
                     "Join the WiFi with a phone: the router should ask this appliance at"
                     " once. If this stays red, the router is not asking it. " + fix)
    age = now - last_at
    minutes = int(age // 60)
    if age > RADIUS_QUIET_SECONDS:
        return Check(name, False, f"last Access-Request {minutes} min ago",
                     "Normal if nobody joined the WiFi since then; if customers are"
                     " connecting now, the router is not asking this appliance. " + fix)
    return Check(name, True, f"last Access-Request {minutes} min ago")


def requests_from_router(from_router: int, last_at: float | None, *, now: float,
                         appliance: str) -> Check:
    """Did portal requests arrive from the router's own address (counted by the device
    locator since the daemon started)? Then the router masquerades its customers' traffic
    to this appliance: no request can be placed, nobody can buy."""
    name = "devices placed (no NAT)"
    if last_at is None or now - last_at > NAT_RECENT_SECONDS:
        earlier = f" ({from_router} more than an hour ago)" if from_router else ""
        return Check(name, True, "no portal request came from the router's own address"
                     f" in the last hour{earlier}")
    minutes = int((now - last_at) // 60)
    return Check(name, False, f"{from_router} portal request(s) came from the router's own"
                 f" address, the last {minutes} min ago: the router NATs its customers'"
                 " traffic to this appliance, so it cannot tell phones apart",
                 "O" + NAT_FIX.format(command=nat_exception_command(appliance))[1:])


def router_setup(gateway: RouterGateway, config: Config, *, auth_port: int, acct_port: int,
                 coa_port: int) -> list[Check]:
    """The router's set-up against what `hotspotd routeros-script` sets (`router.drift`),
    read through the daemon's own router connection, with the ports the daemon is really
    on (the embedded simulator's; `hotspotd check` covers a real router's)."""
    inputs = dataclasses.replace(inputs_from(config), auth_port=auth_port,
                                 acct_port=acct_port, coa_port=coa_port)
    try:
        return check_router_setup(gateway, inputs)
    except RouterError as exc:
        return [Check("router set-up", False, f"could not read it: {exc}",
                      "Check the router API address, user and password in Settings.")]


def daraja_product_access(stk_query: Callable[[str], Any]) -> Check:
    """OAuth can succeed while the Daraja app has no access to M-Pesa Express: then its API
    answers 401/403/404 ("Invalid Access Token") to a fresh token. An STK Query for a
    CheckoutRequestID that does not exist must get a business error instead."""
    name = "Daraja product access"
    try:
        stk_query(PROBE_CHECKOUT_ID)
    except DarajaAuthError as exc:
        return Check(name, False, f"OAuth refused: {exc}",
                     "The consumer key and secret are wrong or belong to the other"
                     " environment (sandbox keys fail in production and back).")
    except DarajaApiError as exc:
        said = f"STK Query answered HTTP {exc.http_status} {exc.error_code}: {exc.error_message}"
        if exc.http_status in NO_PRODUCT_STATUSES:
            return Check(name, False, f"OAuth works, but {said}",
                         "The Daraja app behind this consumer key has no access to M-Pesa"
                         " Express. On developer.safaricom.co.ke open the app and add the"
                         " M-Pesa Express (Lipa na M-Pesa Online) product; in production,"
                         " ask Safaricom to map M-Pesa Express to your shortcode.")
        if "credential" in exc.error_message.lower() or "merchant" in \
                exc.error_message.lower():
            return Check(name, False, f"M-Pesa Express reached, but {said}",
                         "The shortcode or the passkey is wrong: copy both again from the"
                         " Daraja portal (the passkey belongs to the shortcode).")
        return Check(name, True, f"M-Pesa Express reached ({said} for a test request that"
                     " matches no payment: expected)")
    except DarajaProtocolError as exc:
        return Check(name, False, f"unreadable answer: {exc}",
                     "Check [daraja] base_url: something other than Daraja answered.")
    except DarajaError as exc:
        return Check(name, False, f"{type(exc).__name__}: {exc}",
                     "Check the internet uplink and DNS; if the Daraja request budget is busy,"
                     " run the self-test again in a minute.")
    return Check(name, True, "M-Pesa Express reached (STK Query answered)")


def _router_outbox(db: Database, now: float) -> Check:
    row = db.query_one("SELECT COUNT(*), MAX(last_error) FROM router_ops WHERE state = 'failed'"
                       " AND created_at >= ?", (now - 86400,))
    failed = row[0] if row else 0
    if failed:
        return Check("router operations", False, f"{failed} failed today: {row[1]}",
                     "Check the router API address, user and password in Settings.")
    return Check("router operations", True, "no failures today")


def live_probes(config: Config, *, radius: Any, placed: Any, gateway: RouterGateway,
                daraja: Any, started_at: float, radius_ports: tuple[int, int, int],
                ) -> list[Check]:
    """`hotspotd check`'s probes against the running config, then the running daemon's own
    evidence: RADIUS requests seen (`radius`: the server's stats), portal requests from the
    router's address (`placed`: the device locator's stats), the simulated router's set-up,
    and Daraja product access through the daemon's own client. `radius_ports`: auth,
    accounting and CoA ports as the router must use them."""
    results: list[Check] = []
    for check in (checks.check_key_file, checks.check_daraja, checks.check_router,
                  checks.check_coa, checks.check_clock):
        try:
            found = check(config)
            results += found if isinstance(found, list) else [found]
        except Exception as exc:  # one broken probe must not hide the others
            results.append(checks.CheckResult(check.__name__[6:], False, repr(exc)))
    now = time.time()
    auth_port, acct_port, coa_port = radius_ports
    results.append(radius_requests_seen(radius.last_access_request_at, now=now,
                                        started_at=started_at, auth_port=auth_port,
                                        dropped=radius.dropped))
    results.append(requests_from_router(placed.from_router, placed.last_from_router_at,
                                        now=now, appliance=config.router.appliance_address))
    if config.router.backend == "simulator":  # its set-up, read as a real router's
        results += router_setup(gateway, config, auth_port=auth_port, acct_port=acct_port,
                                coa_port=coa_port)
    results += checks.check_more_routers(config)
    results.append(daraja_product_access(functools.partial(
        daraja.stk_query, max_wait=BUDGET_WAIT_SECONDS)))
    return results
