"""RadiusServer against FreeRADIUS's radclient, an independent implementation.

radclient 3.2 checks every reply's Response Authenticator and Message-Authenticator and
drops a reply that fails, so an answered request proves both are right. Skipped when
radclient is missing, unless HOTSPOTD_REQUIRE_RADCLIENT=1 (CI) makes that a failure.
"""

from __future__ import annotations

import pytest
from support.radclient import radclient_path, run_radclient
from support.radius_server import (
    MAC,
    PASSWORD,
    RATE_LIMIT,
    REJECT_MESSAGE,
    SECRET,
    SESSION_TIMEOUT,
    Backend,
    started_server,
)


@pytest.fixture(autouse=True)
def _radclient_installed() -> None:
    radclient_path()


@pytest.fixture
def backend() -> Backend:
    return Backend()


@pytest.fixture
def server(backend):
    with started_server(backend, interim_interval=90) as running:
        yield running


def auth(server, **attributes):
    """Access-Request with keyword attributes, `User_Name` standing for `User-Name`."""
    named = {name.replace("_", "-"): value for name, value in attributes.items()}
    return run_radclient(server.auth_address[1], "auth", SECRET, named)


def test_pap_accept_with_mikrotik_attributes(server, backend):
    reply = auth(
        server,
        User_Name=MAC,
        User_Password=PASSWORD,
        Calling_Station_Id=MAC,
        NAS_Identifier="cafe-router",
    )

    assert reply.code == "Access-Accept", reply.output
    assert reply.attributes["Session-Timeout"] == str(SESSION_TIMEOUT)
    assert reply.attributes["Mikrotik-Rate-Limit"] == RATE_LIMIT
    assert reply.attributes["Acct-Interim-Interval"] == "90"
    assert reply.attributes["Message-Authenticator"].startswith("0x")
    assert backend.requests[0].calling_station_id == MAC
    assert backend.requests[0].nas_identifier == "cafe-router"


def test_unknown_user_rejected(server):
    reply = auth(server, User_Name="11:22:33:44:55:66", User_Password=PASSWORD)

    assert reply.code == "Access-Reject", reply.output
    assert reply.attributes["Reply-Message"] == REJECT_MESSAGE
    assert "Message-Authenticator" in reply.attributes
    assert "Session-Timeout" not in reply.attributes


def test_chap_accept_and_wrong_chap_rejected(server):
    assert auth(server, User_Name=MAC, CHAP_Password=PASSWORD).code == "Access-Accept"
    assert auth(server, User_Name=MAC, CHAP_Password="wrong").code == "Access-Reject"


def test_chap_with_chap_challenge_attribute(server):
    reply = auth(
        server,
        User_Name=MAC,
        CHAP_Password=PASSWORD,
        CHAP_Challenge=bytes.fromhex("00112233445566778899aabbccddeeff"),
    )
    assert reply.code == "Access-Accept", reply.output


def test_accounting_acknowledged_and_recorded(server, backend):
    reply = run_radclient(
        server.acct_address[1],
        "acct",
        SECRET,
        {
            "Acct-Status-Type": "Interim-Update",
            "Acct-Session-Id": "81a00002",
            "User-Name": MAC,
            "Calling-Station-Id": MAC,
            "Framed-IP-Address": "10.5.50.23",
            "Acct-Session-Time": 240,
            "Acct-Input-Octets": 100,
            "Acct-Input-Gigawords": 2,
            "Acct-Output-Octets": 200,
        },
    )

    assert reply.code == "Accounting-Response", reply.output
    assert "Message-Authenticator" in reply.attributes
    [record] = backend.records
    assert (record.status_type, record.session_id) == ("Interim-Update", "81a00002")
    assert record.input_octets == 2 * 2**32 + 100
    assert record.output_octets == 200
    assert (record.framed_ip, record.session_time) == ("10.5.50.23", 240)


def test_required_message_authenticator(backend):
    with started_server(backend, require_message_authenticator=True) as server:
        port = server.auth_address[1]
        attributes = {"User-Name": MAC, "User-Password": PASSWORD}
        bare = run_radclient(
            port, "auth", SECRET, attributes, timeout=1, message_authenticator=False
        )
        signed = run_radclient(port, "auth", SECRET, attributes)

    assert bare.code is None, bare.output
    assert signed.code == "Access-Accept", signed.output


def test_wrong_secret_gets_no_answer(server, backend):
    reply = run_radclient(
        server.auth_address[1],
        "auth",
        "not-the-secret",
        {"User-Name": MAC, "User-Password": PASSWORD},
        timeout=1,
    )
    assert reply.code is None, reply.output
    assert backend.requests == []
