"""The MikroTik simulator over real sockets: raw API sentences, routeros_api, RADIUS as NAS."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import pytest
import routeros_api
from support.radius_responder import Grant, RadiusResponder, make_router_simulator

from hotspotd.simulators.mikrotik import MikrotikSimulator
from hotspotd.simulators.mikrotik.wire import (
    ConnectionClosed,
    SocketReader,
    encode_sentence,
    read_sentence,
)

API_USER = "hotspotd"
API_PASSWORD = "api-pass-123"
MAC = "AA:BB:CC:DD:EE:01"
OTHER_MAC = "AA:BB:CC:DD:EE:02"


class RawClient:
    """Speaks API sentences by hand, as an independent peer."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=5)
        self.reader = SocketReader(self.sock)

    def send(self, *words: str) -> None:
        self.sock.sendall(encode_sentence(list(words)))

    def sentence(self) -> list[str]:
        return read_sentence(self.reader.read_exactly)

    def talk(self, *words: str) -> list[list[str]]:
        """Send one command; return reply sentences up to and including `!done`."""
        self.send(*words)
        replies = []
        while True:
            replies.append(self.sentence())
            if replies[-1][0] in ("!done", "!fatal"):
                return replies

    def login(self) -> None:
        assert self.talk("/login", f"=name={API_USER}", f"=password={API_PASSWORD}") == \
            [["!done"]]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def responder() -> Iterator[RadiusResponder]:
    running = RadiusResponder(grants={MAC: Grant(password="pw1", session_timeout=3600)})
    running.start()
    yield running
    running.stop()


def make_simulator(responder: RadiusResponder, **options: object) -> MikrotikSimulator:
    return make_router_simulator(responder, api_user=API_USER, api_password=API_PASSWORD,
                                 **options)


@pytest.fixture
def simulator(responder: RadiusResponder) -> Iterator[MikrotikSimulator]:
    sim = make_simulator(responder)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def client(simulator: MikrotikSimulator) -> Iterator[RawClient]:
    raw = RawClient(simulator.api_address)
    yield raw
    raw.close()


def login_words(mac: str = MAC, password: str = "pw1", tag: str = "1") -> list[str]:
    return ["/ip/hotspot/active/login", f"=user={mac}", f"=password={password}",
            f"=mac-address={mac}", "=ip=10.5.50.10", f".tag={tag}"]


def test_commands_before_login_are_refused(client: RawClient) -> None:
    assert client.talk("/system/identity/print", ".tag=3") == [
        ["!trap", "=message=not logged in", ".tag=3"], ["!done", ".tag=3"]]


def test_wrong_password_traps_then_done(client: RawClient) -> None:
    assert client.talk("/login", f"=name={API_USER}", "=password=nope") == [
        ["!trap", "=message=invalid user name or password (6)"], ["!done"]]


def test_tags_are_echoed_and_unknown_commands_trap(client: RawClient) -> None:
    client.login()
    assert client.talk("/system/identity/print", ".tag=a1") == [
        ["!re", "=name=hotspotd-sim", ".tag=a1"], ["!done", ".tag=a1"]]
    assert client.talk("/ip/hotspot/active/frobnicate", ".tag=9") == [
        ["!trap", "=category=0", "=message=no such command", ".tag=9"], ["!done", ".tag=9"]]
    assert client.talk("/nowhere/print")[0][-1] == "=message=no such command prefix"


def test_resource_reports_version_and_uptime(client: RawClient) -> None:
    client.login()
    row = dict(word[1:].split("=", 1) for word in client.talk("/system/resource/print")[0][1:])
    assert row["version"] == "7.16 (stable)"
    assert row["uptime"].endswith("s")


def test_login_sends_access_request_and_accounting_start(
        client: RawClient, simulator: MikrotikSimulator, responder: RadiusResponder) -> None:
    client.login()
    assert client.talk(*login_words()) == [["!done", ".tag=1"]]
    request = responder.access_requests[-1]
    assert (responder.methods[-1], responder.passwords[-1]) == ("chap", "pw1")
    assert len(request["CHAP-Challenge"][0]) == 16  # RouterOS's default: http-chap
    assert "User-Password" not in request
    assert request.message_authenticator
    expected = {
        "User-Name": MAC, "Calling-Station-Id": MAC, "Framed-IP-Address": "10.5.50.10",
        "Mikrotik-Host-IP": "10.5.50.10", "NAS-Identifier": "hotspotd-sim",
        "Called-Station-Id": "hotspot1", "NAS-IP-Address": "127.0.0.1",
        "NAS-Port-Type": "Wireless-802.11", "Service-Type": "Login-User",
    }
    for name, value in expected.items():
        assert request[name] == [value], name
    assert "NAS-Port" in request
    session_id = request["Acct-Session-Id"][0]
    assert re.fullmatch("[0-9a-f]{8}", session_id), session_id  # RouterOS: 8 hex digits
    start = responder.wait_for_accounting("Start")
    assert start["Acct-Session-Id"] == [session_id]
    assert start["Acct-Authentic"] == ["RADIUS"]
    assert start["Calling-Station-Id"] == [MAC]
    assert simulator.session_timeout_of(MAC.lower()) == 3600
    assert simulator.rate_limit_of(MAC) == "2M/5M"


def test_active_print_rows_look_like_routeros(client: RawClient) -> None:
    client.login()
    client.talk(*login_words())
    replies = client.talk("/ip/hotspot/active/print", f"?mac-address={MAC}")
    assert [reply[0] for reply in replies] == ["!re", "!done"]
    row = dict(word[1:].split("=", 1) for word in replies[0][1:])
    assert row[".id"] == "*1"
    assert row["mac-address"] == MAC and row["user"] == MAC and row["address"] == "10.5.50.10"
    assert row["login-by"] == "mac" and row["radius"] == "true" and row["server"] == "hotspot1"
    assert row["session-time-left"] in ("1h", "59m59s")
    for counter in ("bytes-in", "bytes-out", "packets-in", "packets-out"):
        assert row[counter].isdigit()
    assert client.talk("/ip/hotspot/active/print", f"?mac-address={OTHER_MAC}") == [["!done"]]
    assert client.talk("/ip/hotspot/active/print", "=.proplist=.id,user") == [
        ["!re", "=.id=*1", f"=user={MAC}"], ["!done"]]
    assert client.talk("/ip/hotspot/active/print", "=count-only=") == [["!done", "=ret=1"]]
    hosts = client.talk("/ip/hotspot/host/print")
    assert f"=mac-address={MAC}" in hosts[0] and "=authorized=true" in hosts[0]


def test_second_login_of_the_same_mac_is_refused(client: RawClient) -> None:
    client.login()
    client.talk(*login_words())
    assert client.talk(*login_words(tag="2"))[0] == [
        "!trap", "=message=already logged in", ".tag=2"]


def test_reject_carries_the_reply_message(client: RawClient) -> None:
    client.login()
    assert client.talk(*login_words(password="wrong")) == [
        ["!trap", "=message=Not paid: buy time on the portal", ".tag=1"], ["!done", ".tag=1"]]
    assert client.talk("/ip/hotspot/active/print") == [["!done"]]


def test_unsigned_replies_are_dropped_when_message_auth_is_required(
        responder: RadiusResponder) -> None:
    responder.sign_replies = False
    sim = make_simulator(responder)
    sim.start()
    raw = RawClient(sim.api_address)
    try:
        raw.login()
        assert raw.talk(*login_words())[0][1] == "=message=RADIUS server is not responding"
        assert len(responder.access_requests) == 2  # first try and one retransmission
    finally:
        raw.close()
        sim.stop()
    lenient = make_simulator(responder, require_message_auth=False)
    lenient.start()
    raw = RawClient(lenient.api_address)
    try:
        raw.login()
        assert raw.talk(*login_words()) == [["!done", ".tag=1"]]
    finally:
        raw.close()
        lenient.stop()


def test_remove_sends_stop_admin_reset_and_missing_id_traps(
        client: RawClient, responder: RadiusResponder) -> None:
    client.login()
    client.talk(*login_words())
    assert client.talk("/ip/hotspot/active/remove", "=.id=*1") == [["!done"]]
    stop = responder.wait_for_accounting("Stop")
    assert stop["Acct-Terminate-Cause"] == ["Admin-Reset"]
    assert "Acct-Session-Time" in stop and "Acct-Output-Octets" in stop
    assert client.talk("/ip/hotspot/active/remove", "=.id=*1")[0] == [
        "!trap", "=message=no such item"]
    client.talk(*login_words(tag="5"))
    ids = client.talk("/ip/hotspot/active/print", "=.proplist=.id")
    assert ids[0] == ["!re", "=.id=*2"]  # never reused


def test_session_expires_with_stop_session_timeout(responder: RadiusResponder) -> None:
    responder.grants[MAC] = Grant(password="pw1", session_timeout=1)
    sim = make_simulator(responder)
    sim.start()
    raw = RawClient(sim.api_address)
    try:
        raw.login()
        raw.talk(*login_words())
        stop = responder.wait_for_accounting("Stop", timeout=4)
        assert stop["Acct-Terminate-Cause"] == ["Session-Timeout"]
        assert stop["Acct-Session-Time"] == [1]
        assert sim.active_hosts() == []
    finally:
        raw.close()
        sim.stop()


def test_interim_updates_follow_the_interval(responder: RadiusResponder) -> None:
    now = [1000.0]
    sim = make_simulator(responder, interim_interval=60, clock=lambda: now[0])
    sim.start()
    raw = RawClient(sim.api_address)
    try:
        raw.login()
        raw.talk(*login_words())
        now[0] += 61
        interim = responder.wait_for_accounting("Interim-Update")
        assert interim["Acct-Session-Time"] == [61]
        assert interim["Acct-Output-Octets"][0] > 0
        row = sim.active_hosts()[0]
        assert row["uptime"] == "1m1s" and row["session-time-left"] == "58m59s"
    finally:
        raw.close()
        sim.stop()


def test_routeros_api_library_reads_the_active_list(
        simulator: MikrotikSimulator, client: RawClient) -> None:
    client.login()
    client.talk(*login_words())
    host, port = simulator.api_address
    pool = routeros_api.RouterOsApiPool(host, username=API_USER, password=API_PASSWORD,
                                        port=port, plaintext_login=True)
    try:
        rows = pool.get_api().get_resource("/ip/hotspot/active").get()
    finally:
        pool.disconnect()
    assert [(row["id"], row["mac-address"]) for row in rows] == [("*1", MAC)]


def test_quit_ends_the_session_with_fatal(client: RawClient) -> None:
    client.login()
    assert client.talk("/quit") == [["!fatal", "session terminated on request"]]


def test_status_page_lists_active_hosts(
        simulator: MikrotikSimulator, client: RawClient) -> None:
    client.login()
    client.talk(*login_words())
    web = simulator.status_app().test_client()
    page = web.get("/")
    assert page.status_code == 200
    assert MAC in page.get_data(as_text=True)
    assert 'http-equiv="refresh" content="2"' in page.get_data(as_text=True)
    assert web.get("/active.json").get_json()[0]["mac-address"] == MAC


def test_stop_is_prompt_with_open_connections(responder: RadiusResponder) -> None:
    sim = make_simulator(responder)
    sim.start()
    clients = [RawClient(sim.api_address) for _ in range(5)]
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 1.5
    for raw in clients:
        with pytest.raises((ConnectionClosed, OSError)):
            raw.talk("/login")
        raw.close()


def test_pap_login_method_sends_user_password(responder: RadiusResponder) -> None:
    sim = make_simulator(responder, login_method="pap")
    sim.start()
    try:
        sim.login_host(user=MAC, password="pw1", mac=MAC, ip="10.5.50.11")
        assert (responder.methods[-1], responder.passwords[-1]) == ("pap", "pw1")
        assert "CHAP-Password" not in responder.access_requests[-1]
        with pytest.raises(ValueError):
            make_simulator(responder, login_method="mschap")
    finally:
        sim.stop()
