"""RadiusServer over real UDP sockets on port 0, with hand-built requests.

Reply signatures are checked with this module's own HMAC-MD5 / MD5 code, not pyrad's.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import struct

import pytest
from pyrad import packet as rp
from support.radius_server import (
    IDLE_TIMEOUT,
    MAC,
    PASSWORD,
    RATE_LIMIT,
    REJECT_MESSAGE,
    SECRET,
    SESSION_TIMEOUT,
    Backend,
    started_server,
)

from hotspotd.radius.dictionary import load_dictionary

MESSAGE_AUTHENTICATOR = 80
NO_REPLY_WAIT = 0.5


@pytest.fixture
def backend() -> Backend:
    return Backend()


@pytest.fixture
def server(backend):
    with started_server(backend) as running:
        yield running


# --- building requests and reading replies ---------------------------------------------


def access_request(user=MAC, password=PASSWORD, *, secret=SECRET, ma=True, **attrs):
    packet = rp.AuthPacket(secret=secret, dict=load_dictionary(), User_Name=user, **attrs)
    packet.authenticator = packet.CreateAuthenticator()
    if password is not None:
        packet["User-Password"] = packet.PwCrypt(password)
    if ma:
        packet.add_message_authenticator()
    return packet.RequestPacket()


def chap_request(password, *, challenge: bytes | None, chap_id=7):
    packet = rp.AuthPacket(secret=SECRET, dict=load_dictionary(), User_Name=MAC)
    packet.authenticator = packet.CreateAuthenticator()
    if challenge is not None:
        packet["CHAP-Challenge"] = challenge
    used = challenge if challenge is not None else packet.authenticator
    ident = bytes([chap_id])
    packet["CHAP-Password"] = ident + hashlib.md5(ident + password.encode() + used).digest()
    packet.add_message_authenticator()
    return packet.RequestPacket()


def accounting_request(status, *, session_id="81a00001", **attrs):
    packet = rp.AcctPacket(
        secret=SECRET,
        dict=load_dictionary(),
        Acct_Status_Type=status,
        Acct_Session_Id=session_id,
        **attrs,
    )
    return packet.RequestPacket()


def exchange(address, raw: bytes, timeout: float = 2.0) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(raw, address)
        try:
            return sock.recv(4096)
        except TimeoutError:
            return None


def decode_reply(raw: bytes) -> rp.Packet:
    return rp.Packet(packet=raw, secret=SECRET, dict=load_dictionary())


def raw_attributes(raw: bytes) -> list[tuple[int, bytes]]:
    attributes, offset = [], 20
    while offset < len(raw):
        code, length = raw[offset], raw[offset + 1]
        attributes.append((code, raw[offset + 2 : offset + length]))
        offset += length
    return attributes


def assert_signed(reply: bytes, request: bytes, *, accounting: bool = False) -> None:
    """Independent RFC 2865 3 / RFC 3579 3.2 check of the reply's two authenticators."""
    code, ident, length = struct.unpack("!BBH", reply[:4])
    assert length == len(reply)
    assert reply[1] == request[1], "reply id must match the request id"
    request_authenticator = request[4:20]
    attributes = raw_attributes(reply)
    assert attributes[0][0] == MESSAGE_AUTHENTICATOR, "Message-Authenticator must come first"
    assert len(attributes[0][1]) == 16
    # HMAC-MD5 over the reply with Message-Authenticator zeroed; the authenticator field
    # holds the Request Authenticator (Access-*) or 16 zero octets (Accounting-Response).
    zeroed = reply[:22] + bytes(16) + reply[38:]
    vector = bytes(16) if accounting else request_authenticator
    expected_ma = hmac.new(SECRET, zeroed[:4] + vector + zeroed[20:], "md5").digest()
    assert attributes[0][1] == expected_ma, "Message-Authenticator is wrong"
    expected_response = hashlib.md5(reply[:4] + request_authenticator + reply[20:] + SECRET)
    assert reply[4:20] == expected_response.digest(), "Response Authenticator is wrong"


# --- Access-Request ----------------------------------------------------------------


def test_pap_accept_carries_limits_and_valid_signatures(server, backend):
    request = access_request(
        Calling_Station_Id=MAC, Framed_IP_Address="10.5.50.23", NAS_Identifier="cafe-router"
    )
    reply = exchange(server.auth_address, request)

    assert reply is not None and reply[0] == rp.AccessAccept
    assert_signed(reply, request)
    attrs = decode_reply(reply)
    assert attrs["Session-Timeout"] == [SESSION_TIMEOUT]
    assert attrs["Idle-Timeout"] == [IDLE_TIMEOUT]
    assert attrs["Mikrotik-Rate-Limit"] == [RATE_LIMIT]
    assert attrs["Acct-Interim-Interval"] == [120]
    seen = backend.requests[0]
    assert (seen.user_name, seen.calling_station_id, seen.framed_ip) == (MAC, MAC, "10.5.50.23")
    assert (seen.nas_address, seen.nas_identifier) == ("127.0.0.1", "cafe-router")
    assert server.stats.accepts == 1


def test_wrong_password_is_rejected_with_reply_message(server, backend):
    request = access_request(password="guess")
    reply = exchange(server.auth_address, request)

    assert reply is not None and reply[0] == rp.AccessReject
    assert_signed(reply, request)
    assert decode_reply(reply)["Reply-Message"] == [REJECT_MESSAGE]
    assert "Session-Timeout" not in decode_reply(reply)
    assert server.stats.rejects == 1


def test_password_matches_checks_pap_cleartext(server, backend):
    exchange(server.auth_address, access_request(password="a-long-password-over-16-octets"))
    matches = backend.requests[0].password_matches
    assert matches("a-long-password-over-16-octets")
    assert not matches("a-long-password-over-16-octet")
    assert not matches("")


@pytest.mark.parametrize("challenge", [bytes(range(16)), None], ids=["challenge", "authenticator"])
def test_chap_accept(server, challenge):
    request = chap_request(PASSWORD, challenge=challenge)
    reply = exchange(server.auth_address, request)
    assert reply is not None and reply[0] == rp.AccessAccept
    assert_signed(reply, request)


def test_chap_wrong_password_rejected(server):
    reply = exchange(server.auth_address, chap_request("nope", challenge=b"\x00\xff" * 8))
    assert reply is not None and reply[0] == rp.AccessReject


def test_request_without_password_never_matches(server, backend):
    reply = exchange(server.auth_address, access_request(password=None))
    assert reply is not None and reply[0] == rp.AccessReject
    assert not backend.requests[0].password_matches("")


def test_unknown_client_gets_no_answer(backend):
    with started_server(backend, clients={"192.0.2.1": SECRET}) as server:
        assert exchange(server.auth_address, access_request(), NO_REPLY_WAIT) is None
        assert exchange(server.acct_address, accounting_request("Start"), NO_REPLY_WAIT) is None
        assert server.stats.dropped["unknown_client"] == 2
    assert backend.requests == [] and backend.records == []


def test_bad_message_authenticator_gets_no_answer(server, backend):
    request = bytearray(access_request())
    assert request[20] == MESSAGE_AUTHENTICATOR
    request[30] ^= 0xFF
    assert exchange(server.auth_address, bytes(request), NO_REPLY_WAIT) is None
    assert server.stats.dropped["bad_message_authenticator"] == 1
    assert backend.requests == []


def test_wrong_secret_gets_no_answer(server, backend):
    request = access_request(secret=b"not-the-secret")
    assert exchange(server.auth_address, request, NO_REPLY_WAIT) is None
    assert backend.requests == []


def test_request_without_message_authenticator_answered_when_not_required(backend):
    with started_server(backend, require_message_authenticator=False) as server:
        request = access_request(ma=False)
        reply = exchange(server.auth_address, request)
    assert reply is not None and reply[0] == rp.AccessAccept
    assert_signed(reply, request)


def test_message_authenticator_missing_gets_no_answer_by_default(server):
    assert exchange(server.auth_address, access_request(ma=False), NO_REPLY_WAIT) is None
    assert server.stats.dropped["missing_message_authenticator"] == 1
    reply = exchange(server.auth_address, access_request())
    assert reply is not None and reply[0] == rp.AccessAccept


def test_malformed_packets_dropped_and_server_keeps_serving(server):
    for junk in (b"", b"\x01\x02", b"\x01\x01\x00\x30" + bytes(16), access_request()[:-3]):
        assert exchange(server.auth_address, junk, 0.2) is None
    assert server.stats.dropped["malformed"] >= 3
    assert exchange(server.auth_address, access_request())[0] == rp.AccessAccept


def test_authorize_raising_rejects_and_server_stays_alive(server, backend):
    backend.authorize_error = RuntimeError("database is locked")
    request = access_request()
    reply = exchange(server.auth_address, request)
    assert reply is not None and reply[0] == rp.AccessReject
    assert_signed(reply, request)
    assert decode_reply(reply)["Reply-Message"] == ["Service temporarily unavailable"]

    backend.authorize_error = None
    assert exchange(server.auth_address, access_request())[0] == rp.AccessAccept


def test_retransmission_answered_from_cache(server, backend):
    request = access_request()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as nas:  # same source port
        nas.settimeout(2.0)
        nas.sendto(request, server.auth_address)
        first = nas.recv(4096)
        nas.sendto(request, server.auth_address)
        second = nas.recv(4096)
    assert first == second
    assert len(backend.requests) == 1
    assert server.stats.duplicates == 1


# --- Accounting-Request ------------------------------------------------------------


def test_accounting_start_interim_stop_recorded_with_gigawords(server, backend):
    common = {"User_Name": MAC, "Calling_Station_Id": MAC, "Framed_IP_Address": "10.5.50.23"}
    sent = [
        accounting_request("Start", **common),
        accounting_request(
            "Interim-Update",
            Acct_Session_Time=120,
            Acct_Input_Octets=10,
            Acct_Input_Gigawords=1,
            Acct_Output_Octets=20,
            Acct_Output_Gigawords=3,
            Acct_Input_Packets=5,
            Acct_Output_Packets=6,
            **common,
        ),
        accounting_request(
            "Stop",
            Acct_Session_Time=300,
            Acct_Input_Octets=7,
            Acct_Output_Octets=8,
            Acct_Terminate_Cause="Session-Timeout",
            **common,
        ),
    ]
    for request in sent:
        reply = exchange(server.acct_address, request)
        assert reply is not None and reply[0] == rp.AccountingResponse
        assert_signed(reply, request, accounting=True)

    start, interim, stop = backend.records
    assert [r.status_type for r in backend.records] == ["Start", "Interim-Update", "Stop"]
    assert {r.session_id for r in backend.records} == {"81a00001"}
    assert (start.user_name, start.calling_station_id, start.framed_ip) == (MAC, MAC, "10.5.50.23")
    assert (start.session_time, start.input_octets, start.output_octets) == (None, 0, 0)
    assert interim.input_octets == 2**32 + 10
    assert interim.output_octets == 3 * 2**32 + 20
    assert (interim.input_packets, interim.output_packets) == (5, 6)
    assert (stop.session_time, stop.terminate_cause) == (300, "Session-Timeout")
    assert stop.nas_address == "127.0.0.1" and stop.received_at > 0


def test_accounting_bad_authenticator_not_answered_nor_recorded(server, backend):
    request = bytearray(accounting_request("Start"))
    request[4] ^= 0x01
    assert exchange(server.acct_address, bytes(request), NO_REPLY_WAIT) is None
    assert backend.records == []
    assert server.stats.dropped["bad_authenticator"] == 1


def test_accounting_not_acknowledged_when_recording_fails(server, backend):
    backend.accounting_error = OSError("disk full")
    request = accounting_request("Stop", Acct_Session_Time=60)
    assert exchange(server.acct_address, request, NO_REPLY_WAIT) is None
    assert server.stats.dropped["accounting_failed"] == 1

    backend.accounting_error = None  # the NAS retries the same packet: now recorded
    reply = exchange(server.acct_address, request)
    assert reply is not None and reply[0] == rp.AccountingResponse
    assert [r.status_type for r in backend.records] == ["Stop"]


def test_accounting_on_without_user(server, backend):
    reply = exchange(server.acct_address, accounting_request("Accounting-On", session_id="0"))
    assert reply is not None and reply[0] == rp.AccountingResponse
    assert backend.records[0].status_type == "Accounting-On"
    assert backend.records[0].user_name is None


def test_access_request_on_accounting_port_dropped(server):
    assert exchange(server.acct_address, access_request(), NO_REPLY_WAIT) is None
    assert server.stats.dropped["unsupported_code"] == 1


# --- lifecycle -----------------------------------------------------------------------


def test_stop_closes_sockets_and_is_idempotent(backend):
    with started_server(backend) as server:
        address = server.auth_address
    server.stop()
    with pytest.raises(RuntimeError):
        server.auth_address  # noqa: B018
    assert exchange(address, access_request(), 0.2) is None


def test_clients_validated():
    backend = Backend()
    with pytest.raises(ValueError):
        started_server(backend, clients={"router.lan": SECRET}).__enter__()
    with pytest.raises(ValueError):
        started_server(backend, clients={"127.0.0.1": "text"}).__enter__()
