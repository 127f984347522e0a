"""CoA / Disconnect against the MikroTik simulator's `/radius incoming` listener, over real
UDP: radclient as an independent client, then hotspotd's own CoaClient; faults and reboot."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.radclient import run_radclient
from support.radius_responder import SECRET, Grant, RadiusResponder, make_router_simulator

from hotspotd.radius.coa import CoaClient, SessionChange, SessionRef
from hotspotd.simulators.mikrotik import MikrotikSimulator

MAC = "AA:BB:CC:DD:EE:21"
IP = "10.5.50.21"
MA = b"\x00"  # radclient fills in the Message-Authenticator


@pytest.fixture
def responder() -> Iterator[RadiusResponder]:
    running = RadiusResponder(grants={MAC: Grant(password="pw", session_timeout=600)})
    running.start()
    yield running
    running.stop()


@pytest.fixture
def router(responder: RadiusResponder) -> Iterator[MikrotikSimulator]:
    sim = make_router_simulator(responder, api_user="u", api_password="p")
    sim.start()
    sim.login_host(user=MAC, password="pw", mac=MAC, ip=IP)
    yield sim
    sim.stop()


def session_id(router: MikrotikSimulator) -> str:
    return router._table.find(MAC).acct_session_id  # type: ignore[union-attr]


def coa_client(router: MikrotikSimulator, timeout: float = 0.3) -> CoaClient:
    host, port = router.coa_address
    return CoaClient(host=host, port=port, secret=SECRET.encode(), timeout=timeout, retries=1)


def test_radclient_coa_changes_session_timeout_and_rate(router: MikrotikSimulator) -> None:
    reply = run_radclient(router.coa_address[1], "coa", SECRET, {
        "User-Name": MAC, "Framed-IP-Address": IP, "Acct-Session-Id": session_id(router),
        "Session-Timeout": 7200, "Mikrotik-Rate-Limit": "4M/8M", "Message-Authenticator": MA})
    assert reply.code == "CoA-ACK", reply.output
    assert router.session_timeout_of(MAC) == 7200
    assert router.rate_limit_of(MAC) == "4M/8M"


def test_radclient_disconnect_ends_the_session(router: MikrotikSimulator,
                                               responder: RadiusResponder) -> None:
    reply = run_radclient(router.coa_address[1], "disconnect", SECRET, {
        "User-Name": MAC, "Framed-IP-Address": IP, "Message-Authenticator": MA})
    assert reply.code == "Disconnect-ACK", reply.output
    assert router.active_hosts() == []
    stop = responder.wait_for_accounting("Stop")
    assert stop["Acct-Terminate-Cause"][0] == "Admin-Reset"


def test_unknown_session_gets_nak_with_error_cause(router: MikrotikSimulator) -> None:
    reply = run_radclient(router.coa_address[1], "disconnect", SECRET, {
        "User-Name": MAC, "Framed-IP-Address": "10.5.50.99", "Message-Authenticator": MA})
    assert reply.code == "Disconnect-NAK", reply.output
    assert reply.attributes["Error-Cause"] == "Session-Context-Not-Found"
    wrong_id = run_radclient(router.coa_address[1], "coa", SECRET, {
        "User-Name": MAC, "Framed-IP-Address": IP, "Acct-Session-Id": "nope",
        "Session-Timeout": 1, "Message-Authenticator": MA})
    assert wrong_id.code == "CoA-NAK"
    assert router.session_timeout_of(MAC) == 600


def test_require_message_auth_drops_requests_without_one(router: MikrotikSimulator) -> None:
    reply = run_radclient(router.coa_address[1], "coa", SECRET, {
        "User-Name": MAC, "Framed-IP-Address": IP, "Session-Timeout": 5}, timeout=0.5)
    assert reply.code is None
    wrong_secret = run_radclient(router.coa_address[1], "coa", "not-the-secret", {
        "User-Name": MAC, "Framed-IP-Address": IP, "Session-Timeout": 5,
        "Message-Authenticator": MA}, timeout=0.5)
    assert wrong_secret.code is None
    # A signed CoA sent after them is acknowledged: the listener handles one datagram at a
    # time, in order, so the two before were handled, and changed nothing.
    later = run_radclient(router.coa_address[1], "coa", SECRET, {
        "User-Name": MAC, "Framed-IP-Address": IP, "Idle-Timeout": 120,
        "Message-Authenticator": MA})
    assert later.code == "CoA-ACK", later.output
    assert (router.session_timeout_of(MAC), router.idle_timeout_of(MAC)) == (600, 120)


def test_coa_client_change_disconnect_and_nak(router: MikrotikSimulator) -> None:
    client = coa_client(router)
    ref = SessionRef(MAC, IP, session_id(router))
    outcome = client.change(ref, SessionChange(session_timeout=900, idle_timeout=60,
                                               total_limit_bytes=5 * 2**32 + 7))
    assert outcome.acked, outcome
    assert router.session_timeout_of(MAC) == 900
    assert router.idle_timeout_of(MAC) == 60
    assert router.total_limit_of(MAC) == 5 * 2**32 + 7
    assert client.disconnect(ref).acked
    nak = client.disconnect(ref)
    assert (nak.answered, nak.acked, nak.error_cause) == (True, False, 503)


def test_dropped_coa_is_no_answer_and_retransmission_is_answered_once(
        router: MikrotikSimulator) -> None:
    router.faults.set(drop_coa=1.0)
    outcome = coa_client(router, timeout=0.2).change(SessionRef(MAC, IP), SessionChange(100))
    assert not outcome.answered
    assert router._coa.dropped == 2  # the first send and one retransmission
    router.faults.clear()
    assert coa_client(router).change(SessionRef(MAC, IP), SessionChange(100)).acked


def test_reboot_loses_sessions_and_sends_accounting_on(router: MikrotikSimulator,
                                                       responder: RadiusResponder) -> None:
    router.reboot()
    assert router.active_hosts() == []
    assert [row["mac-address"] for row in router.seen_hosts()] == [MAC]
    responder.wait_for_accounting("Accounting-On")
