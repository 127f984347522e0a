"""The appliance as a RADIUS home server behind a proxy, checked by software written by others
(issue 15): FreeRADIUS 3 (Debian package) proxying to it, radclient in front of the proxy,
and node-radius (npm "radius") talking to it directly as a proxy would.

- radclient -> FreeRADIUS (realm DEFAULT, its own secret, require_message_authenticator =
  yes) -> the appliance (its secret, Message-Authenticator required): a paid MAC is
  accepted with Session-Timeout and rate, a borrowed MAC refused; accounting Start and
  Stop reach radius_sessions. radclient and FreeRADIUS both check every reply's Response
  Authenticator and Message-Authenticator.
- node-radius sends requests carrying two Proxy-State attributes: each reply (accept,
  reject, Accounting-Response) carries them, unmodified and in order (RFC 2865 5.33);
  before the fix, Access-Accept and -Reject dropped them.
- node-radius retransmits one voucher login (same id, authenticator and source, as a
  proxy does): the same reply octets come back from the duplicate cache, one decision.

Skipped without FreeRADIUS, radclient or node-radius, unless HOTSPOTD_REQUIRE_FREERADIUS=1
(CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.freeradius_proxy import (
    FRONT_SECRET,
    REQUIRE_ENV,
    RunningProxy,
    freeradius_path,
    freeradius_proxy,
)
from support.radclient import RadclientReply, radclient_path, run_radclient

from hotspotd.access.access import NOT_THIS_DEVICE
from hotspotd.app import Appliance
from hotspotd.ledger.grants import grant_time
from hotspotd.ledger.vouchers import create_batch

PAID = "AA:BB:CC:15:02:01"
THIEF = "AA:BB:CC:15:02:66"
VOUCHER_PHONE = "AA:BB:CC:15:02:02"
RATE = "3M/6M"
GRANTED = 3600
NODE_DIR = Path(__file__).parent / "support" / "node_radius"
MIKROTIK_DICTIONARY = Path(__file__).parent.parent / "radius" / "dictionary.mikrotik"
STATES = ["0001", "70726f78792d73746174652d32" + "ff" * 20]  # two Proxy-State, in order


def node_client() -> list[str]:
    """The command running node-radius, or skip (fail under HOTSPOTD_REQUIRE_FREERADIUS=1)."""
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "radius").is_dir():
        reason = f"node-radius not installed (npm ci --prefix {NODE_DIR})"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires it")
        pytest.skip(reason)
    return [node, str(NODE_DIR / "client.js")]


@pytest.fixture
def appliance(appliance: Appliance) -> Appliance:
    """The per-test appliance (conftest.py) with PAID's time granted."""
    freeradius_path()
    radclient_path()
    with appliance.db.write() as conn:
        grant_time(conn, mac=PAID, seconds=GRANTED, now=appliance.now(), plan_id=None,
                   rate_limit=RATE, source="test")
    return appliance


@pytest.fixture
def proxy(appliance: Appliance) -> Iterator[RunningProxy]:
    radius = appliance.addresses["radius"]
    with freeradius_proxy(auth_port=radius["auth_port"], acct_port=radius["acct_port"],
                          secret=radius["secret"]) as running:
        yield running


def through_proxy(proxy: RunningProxy, kind: str, attributes: dict[str, Any]) -> RadclientReply:
    port = proxy.auth_port if kind == "auth" else proxy.acct_port
    return run_radclient(port, kind, FRONT_SECRET, attributes, timeout=8.0)


def mac_login(appliance: Appliance, user: str, station: str) -> dict[str, Any]:
    return {"User-Name": user, "User-Password": appliance.config.radius.mac_password,
            "Calling-Station-Id": station, "NAS-Identifier": "venue-router"}


def node_exchange(appliance: Appliance, code: str, attributes: list[list[Any]], *,
                  kind: str = "auth", sends: int = 1,
                  via: tuple[int, str] | None = None) -> dict[str, Any]:
    """One exchange with node-radius: straight to the appliance, or `via` (port, secret)
    another server, such as the FreeRADIUS proxy in front of it."""
    radius = appliance.addresses["radius"]
    port, secret = via or (radius[f"{kind}_port"], radius["secret"])
    request = {"host": "127.0.0.1", "port": port, "secret": secret,
               "code": code, "attributes": attributes, "proxy_states": STATES,
               "sends": sends, "mikrotik_dictionary": str(MIKROTIK_DICTIONARY)}
    done = subprocess.run(node_client(), input=json.dumps(request), capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def session(appliance: Appliance, session_id: str) -> dict[str, Any] | None:
    row = appliance.db.query_one("SELECT * FROM radius_sessions WHERE session_id = ?",
                                 (session_id,))
    return None if row is None else dict(row)


def test_paid_mac_through_freeradius_proxy_is_accepted_with_its_time_and_rate(
        appliance: Appliance, proxy: RunningProxy) -> None:
    reply = through_proxy(proxy, "auth", mac_login(appliance, PAID, PAID))

    assert reply.code == "Access-Accept", reply.output
    assert 0 < int(reply.attributes["Session-Timeout"]) <= GRANTED, reply.output
    assert reply.attributes["Mikrotik-Rate-Limit"] == RATE, reply.output
    assert reply.attributes["Message-Authenticator"].startswith("0x"), reply.output
    # The proxy signed its request to the appliance: none was dropped for lack of it.
    assert not appliance.radius.stats.dropped, appliance.radius.stats.dropped


def test_borrowed_mac_through_freeradius_proxy_is_rejected_with_the_appliance_message(
        appliance: Appliance, proxy: RunningProxy) -> None:
    reply = through_proxy(proxy, "auth", mac_login(appliance, PAID, THIEF))

    assert reply.code == "Access-Reject", reply.output
    assert reply.attributes.get("Reply-Message") == NOT_THIS_DEVICE, reply.output


def test_accounting_start_and_stop_through_freeradius_proxy_reach_radius_sessions(
        appliance: Appliance, proxy: RunningProxy) -> None:
    base = {"Acct-Session-Id": "proxy-sess-1", "User-Name": PAID, "Calling-Station-Id": PAID,
            "Framed-IP-Address": "10.5.50.7", "NAS-Identifier": "venue-router"}
    start = through_proxy(proxy, "acct", {**base, "Acct-Status-Type": "Start"})
    assert start.code == "Accounting-Response", start.output
    row = session(appliance, "proxy-sess-1")
    assert row is not None and row["status"] == "online" and row["mac"] == PAID, row

    stop = through_proxy(proxy, "acct", {**base, "Acct-Status-Type": "Stop",
                                         "Acct-Session-Time": 61, "Acct-Input-Octets": 5000,
                                         "Acct-Terminate-Cause": "User-Request"})
    assert stop.code == "Accounting-Response", stop.output
    row = session(appliance, "proxy-sess-1")
    assert row is not None and row["status"] == "stopped", row
    assert row["session_time"] == 61 and row["input_octets"] == 5000, row


@pytest.mark.parametrize(("station", "code"), [(PAID, "Access-Accept"),
                                               (THIEF, "Access-Reject")])
def test_access_replies_copy_every_proxy_state_unmodified_and_in_order(
        appliance: Appliance, station: str, code: str) -> None:
    login = mac_login(appliance, PAID, station)
    answer = node_exchange(appliance, "Access-Request", [[k, v] for k, v in login.items()])

    reply = answer["replies"][0]
    assert reply is not None, "no reply to a signed Access-Request"
    assert reply["code"] == code
    assert reply["verified"], "node-radius: Response Authenticator or Message-Authenticator"
    assert reply["proxy_states"] == STATES


def test_accounting_response_copies_every_proxy_state_unmodified_and_in_order(
        appliance: Appliance) -> None:
    attributes = [["Acct-Status-Type", "Interim-Update"], ["Acct-Session-Id", "node-sess-1"],
                  ["User-Name", PAID], ["Calling-Station-Id", PAID]]
    answer = node_exchange(appliance, "Accounting-Request", attributes, kind="acct")

    reply = answer["replies"][0]
    assert reply is not None and reply["code"] == "Accounting-Response"
    assert reply["verified"], "node-radius: Response Authenticator or Message-Authenticator"
    assert reply["proxy_states"] == STATES


def test_a_proxys_retransmission_is_answered_from_the_duplicate_cache_one_redemption(
        appliance: Appliance) -> None:
    _, (voucher,) = create_batch(appliance.db, plan_id=1, count=1, now=appliance.now())
    stats = appliance.radius.stats
    before = (stats.duplicates, stats.accepts, stats.rejects)
    attributes = [["User-Name", voucher.code], ["User-Password", voucher.code],
                  ["Calling-Station-Id", VOUCHER_PHONE], ["NAS-Identifier", "venue-router"]]

    answer = node_exchange(appliance, "Access-Request", attributes, sends=2)

    first, again = answer["replies"]
    assert first is not None and first["code"] == "Access-Accept" and first["verified"]
    assert again is not None and again["hex"] == first["hex"]
    assert again["proxy_states"] == STATES
    assert (stats.duplicates, stats.accepts, stats.rejects) == (
        before[0] + 1, before[1] + 1, before[2])
    assert appliance.access.voucher_logins.wait_idle()
    redeemed = appliance.db.query("SELECT mac FROM grants WHERE source LIKE 'voucher%'"
                                  " AND mac = ?", (VOUCHER_PHONE,))
    assert len(redeemed) == 1, redeemed
    used = appliance.db.query_one("SELECT status, used_by_mac FROM vouchers WHERE code = ?",
                                  (voucher.code,))
    assert tuple(used) == ("used", VOUCHER_PHONE)


def test_node_radius_through_the_freeradius_proxy_gets_the_appliances_answer(
        appliance: Appliance, proxy: RunningProxy) -> None:
    """The second client library against the proxy: FreeRADIUS forwards to the appliance,
    re-signs its answer for this client, and hands back this client's Proxy-States."""
    login = mac_login(appliance, PAID, PAID)
    answer = node_exchange(appliance, "Access-Request", [[k, v] for k, v in login.items()],
                           via=(proxy.auth_port, FRONT_SECRET))

    reply = answer["replies"][0]
    assert reply is not None, "no answer through the proxy"
    assert reply["code"] == "Access-Accept" and reply["verified"]
    assert 0 < int(reply["attributes"]["Session-Timeout"]) <= GRANTED
    assert reply["proxy_states"] == STATES
