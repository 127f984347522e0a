"""Attacks on the RADIUS side, against the real appliance over real sockets (issue 12, 4).

Each test shows the attack fails AND an honest customer beside it still gets online: a phone
at its own address on the simulated WiFi buys a plan (or uses a voucher) and the router
simulator lists it active. Requests are sent as a NAS would (pyrad, and FreeRADIUS's
radclient as an independent peer), from 127.0.0.1, the appliance's configured client.
"""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest
from pyrad import packet as rp
from support.mpesa import accepted, buy
from support.phones import phone_for
from support.radclient import radclient_path, run_radclient
from support.wait import wait_until

from hotspotd.access.access import NOT_THIS_DEVICE, UNKNOWN_USER, device_password
from hotspotd.app import Appliance
from hotspotd.ledger.vouchers import ALPHABET, create_batch
from hotspotd.radius.dictionary import load_dictionary

PAID = "AA:BB:CC:12:04:01"  # the honest customer who pays
THIEF = "AA:BB:CC:12:04:66"  # another device on the WiFi
HONEST_VOUCHER = "AA:BB:CC:12:04:02"
AUTO_APPROVE = "254700000000"  # the Daraja simulator approves this number by itself


@pytest.fixture(autouse=True)
def radclient() -> None:
    radclient_path()  # skip (or fail under HOTSPOTD_REQUIRE_RADCLIENT=1) without radclient


@pytest.fixture
def appliance_config() -> dict[str, dict[str, Any]]:
    return {"portal": {"voucher_attempts": 10, "attempt_window_seconds": 900}}


@pytest.fixture
def paid(appliance: Appliance) -> str:
    """PAID bought the first plan from its own phone and the router lists it online."""
    public_id = accepted(buy(appliance, AUTO_APPROVE, PAID))
    wait_online(appliance, PAID)
    return public_id


# -- a NAS's requests ----------------------------------------------------------------------


def radius(appliance: Appliance) -> dict[str, Any]:
    return dict(appliance.addresses["radius"])


def access_request(appliance: Appliance, user: str, *, station: str | None,
                   password: str, ma: bool = True) -> rp.AuthPacket:
    secret = radius(appliance)["secret"].encode()
    request = rp.AuthPacket(code=rp.AccessRequest, secret=secret, dict=load_dictionary())
    request["User-Name"] = user
    request["User-Password"] = request.PwCrypt(password)
    if station is not None:
        request["Calling-Station-Id"] = station
    request["NAS-Identifier"] = "hostile-test"
    if ma:
        request.add_message_authenticator()
    return request


def exchange(appliance: Appliance, request: rp.AuthPacket,
             wait: float = 3.0) -> rp.Packet | None:
    """Send one Access-Request; the verified reply, or None when nothing came back."""
    raw = request.RequestPacket()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(wait)
        sock.sendto(raw, appliance.radius.auth_address)
        try:
            data = sock.recvfrom(4096)[0]
        except TimeoutError:
            return None
    reply = request.CreateReply(packet=data)
    assert request.VerifyReply(reply, data), "the reply must be signed for this request"
    return reply


def dropped_unanswered(appliance: Appliance, request: rp.AuthPacket) -> bool:
    """Send `request`, then a signed Access-Request from the same socket, and read replies
    until the second one's comes back. The server answers one socket's requests in order,
    so that reply proves the first was handled: True when it got no reply of its own."""
    probe = access_request(appliance, PAID, station=PAID,
                           password=radius(appliance)["mac_password"])
    probe.id = (request.id + 1) % 256
    seen: list[int] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(request.RequestPacket(), appliance.radius.auth_address)
        sock.sendto(probe.RequestPacket(), appliance.radius.auth_address)
        while probe.id not in seen:
            seen.append(sock.recvfrom(4096)[0][1])  # octet 1: the request's identifier
    return request.id not in seen


def pap(appliance: Appliance, user: str, station: str | None, password: str) -> rp.Packet:
    reply = exchange(appliance, access_request(appliance, user, station=station,
                                               password=password))
    assert reply is not None, "an Access-Request with Message-Authenticator is answered"
    return reply


def message(reply: rp.Packet) -> str:
    return str(reply["Reply-Message"][0]) if "Reply-Message" in reply else ""


def radclient_auth(appliance: Appliance, attributes: dict[str, str | int | bytes],
                   **options: Any) -> Any:
    settings = radius(appliance)
    return run_radclient(settings["auth_port"], "auth", settings["secret"], attributes,
                         host=settings["host"], **options)


def wait_online(appliance: Appliance, mac: str, timeout: float = 20.0) -> dict[str, str]:
    return wait_until(lambda: next((row for row in appliance.router_simulator.active_hosts()
                                    if row["mac-address"] == mac), None),
                      timeout=timeout, message=f"{mac} online")


# -- the attacks -------------------------------------------------------------------------------


def test_borrowed_identity_a_paid_mac_from_another_device_is_rejected(
        appliance: Appliance, paid: str) -> None:
    """User-Name = the paid device's MAC, Calling-Station-Id = the thief's (what the router
    sends when the paid MAC is typed on the thief's login page), or none at all: refused,
    with the shared password, over pyrad and radclient alike. The paid device's own
    login gets its time and rate."""
    mac_password = radius(appliance)["mac_password"]
    for user, station in ((PAID, THIEF), (PAID.lower().replace(":", "-"), THIEF),
                          (PAID, None), (PAID, "not-a-mac")):
        reply = pap(appliance, user, station, mac_password)
        assert (reply.code, message(reply)) == (rp.AccessReject, NOT_THIS_DEVICE), station
    stolen = radclient_auth(appliance, {"User-Name": PAID, "User-Password": mac_password,
                                        "Calling-Station-Id": THIEF})
    assert stolen.code == "Access-Reject", stolen.output
    assert stolen.attributes["Reply-Message"] == NOT_THIS_DEVICE
    assert "Session-Timeout" not in stolen.attributes

    own = pap(appliance, PAID, PAID.lower(), mac_password)  # normalised before comparing
    assert own.code == rp.AccessAccept and 1700 < own["Session-Timeout"][0] <= 1800
    by_radclient = radclient_auth(appliance, {"User-Name": PAID, "CHAP-Password": mac_password,
                                              "Calling-Station-Id": PAID})
    assert by_radclient.code == "Access-Accept", by_radclient.output
    assert by_radclient.attributes["Mikrotik-Rate-Limit"] == own["Mikrotik-Rate-Limit"][0]
    wait_online(appliance, PAID)  # the honest customer is online all along
    assert not any(row["mac-address"] == THIEF
                   for row in appliance.router_simulator.active_hosts())


def test_pap_fallback_page_never_carries_the_shared_mac_password(
        appliance: Appliance, paid: str) -> None:
    """The paid phone's own status page, with a router that asked for PAP (no chap-id):
    the login form holds the device's own credential, which logs in that device only."""
    mac_password = radius(appliance)["mac_password"]
    phone = phone_for(appliance, PAID)
    page = phone.get(appliance.addresses["portal_url"] + f"status/{paid}",
                     params={"link-login-only": "http://10.5.50.1/login",
                             "link-orig": "http://example.com/"}).text
    assert 'id="router-login"' in page, "a completed purchase offers the router's form"
    assert mac_password not in page
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    assert fields["username"] == PAID
    own = fields["password"]
    assert own == device_password(mac_password, PAID) and own != mac_password

    assert pap(appliance, PAID, PAID, own).code == rp.AccessAccept  # the device itself
    thief = pap(appliance, PAID, THIEF, own)  # the page's credential on another device
    assert (thief.code, message(thief)) == (rp.AccessReject, NOT_THIS_DEVICE)
    other_paid = "AA:BB:CC:12:04:03"
    accepted(buy(appliance, AUTO_APPROVE, other_paid))
    wait_online(appliance, other_paid)  # an honest buyer beside it gets online
    for user in (other_paid, THIEF):  # it is no key to any other MAC's own login either
        assert pap(appliance, user, user, own).code == rp.AccessReject


def test_voucher_guessing_flood_from_one_device_is_cut_off_and_a_real_voucher_logs_in(
        appliance: Appliance) -> None:
    """Wrong codes typed as User-Name from one device: refused as unknown up to the limit,
    then refused as too many (even the right code: a guess cannot be confirmed), without a
    database write per request. A real voucher on another device still logs in."""
    limit = appliance.config.portal.voucher_attempts
    _, (real, spare) = create_batch(appliance.db, plan_id=1, count=2, now=appliance.now())
    before = appliance.db.query_one("SELECT COUNT(*) FROM rate_limits")[0]
    answers = []
    for number in range(limit + 15):
        guess = "".join(ALPHABET[(number * 7 + k) % len(ALPHABET)] for k in range(8))
        reply = pap(appliance, guess, THIEF, guess)
        answers.append((reply.code, message(reply)))
    assert answers[:limit] == [(rp.AccessReject, UNKNOWN_USER)] * limit
    assert all(code == rp.AccessReject and message.startswith("Too many wrong voucher codes")
               for code, message in answers[limit:]), answers[limit:]
    right = pap(appliance, spare.code, THIEF, spare.code)
    assert right.code == rp.AccessReject and message(right).startswith("Too many")
    by_radclient = radclient_auth(appliance, {"User-Name": spare.code, "User-Password":
                                              spare.code, "Calling-Station-Id": THIEF})
    assert by_radclient.code == "Access-Reject", by_radclient.output
    assert appliance.db.query_one("SELECT COUNT(*) FROM rate_limits")[0] == before

    router = appliance.router_simulator  # the honest customer types the code on the router
    phone = phone_for(appliance, HONEST_VOUCHER)
    router.login_host(user=real.code, password=real.code, mac=HONEST_VOUCHER,
                      ip=phone.address)
    assert 1700 < (router.session_timeout_of(HONEST_VOUCHER) or 0) <= 1800  # plan 1
    wait_online(appliance, HONEST_VOUCHER)
    assert appliance.access.voucher_logins.wait_idle()
    used = appliance.db.query_one("SELECT status, used_by_mac FROM vouchers WHERE code = ?",
                                  (real.code,))
    assert (used["status"], used["used_by_mac"]) == ("used", HONEST_VOUCHER)
    assert appliance.db.query_one("SELECT status FROM vouchers WHERE code = ?",
                                  (spare.code,))["status"] == "unused"


def test_access_request_without_message_authenticator_is_refused_by_default(
        appliance: Appliance, paid: str) -> None:
    """No `[radius] require_message_authenticator` in the configuration: requests without
    one (BlastRADIUS) are dropped unanswered; the router's own (with one) are answered."""
    assert appliance.config.radius.require_message_authenticator is True  # the default
    mac_password = radius(appliance)["mac_password"]
    dropped = appliance.radius.stats.dropped["missing_message_authenticator"]
    bare = access_request(appliance, PAID, station=PAID, password=mac_password, ma=False)
    assert dropped_unanswered(appliance, bare)
    unsigned = radclient_auth(appliance, {"User-Name": PAID, "User-Password": mac_password,
                                          "Calling-Station-Id": PAID},
                              message_authenticator=False, timeout=1.0)
    assert unsigned.code is None, unsigned.output
    assert appliance.radius.stats.dropped["missing_message_authenticator"] == dropped + 2
    assert pap(appliance, PAID, PAID, mac_password).code == rp.AccessAccept
    wait_online(appliance, PAID)
