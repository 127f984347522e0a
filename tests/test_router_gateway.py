"""RouterGateway against the MikroTik simulator over TCP, with a RADIUS responder on UDP."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest
from support.radius_responder import Grant, RadiusResponder, make_router_simulator

from hotspotd.router.gateway import (
    ActiveHost,
    RouterCommandFailed,
    RouterGateway,
    RouterLoginFailed,
    RouterUnreachable,
)
from hotspotd.simulators.mikrotik import MikrotikSimulator

API_USER = "hotspotd"
API_PASSWORD = "Sup3r-Secret-API-pw"
MAC = "AA:BB:CC:DD:EE:10"
REJECTED_MAC = "AA:BB:CC:DD:EE:11"


@pytest.fixture
def responder() -> Iterator[RadiusResponder]:
    running = RadiusResponder(grants={
        MAC: Grant(password="tok-1", session_timeout=1800, rate_limit="1M/4M"),
    })
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


def gateway_for(sim: MikrotikSimulator, password: str = API_PASSWORD) -> RouterGateway:
    host, port = sim.api_address
    return RouterGateway(host=host, port=port, user=API_USER, password=password, timeout=3)


@pytest.fixture
def gateway(simulator: MikrotikSimulator) -> Iterator[RouterGateway]:
    gw = gateway_for(simulator)
    yield gw
    gw.close()


def test_login_host_shows_the_active_row(
        gateway: RouterGateway, simulator: MikrotikSimulator, responder: RadiusResponder) -> None:
    gateway.login_host(mac=MAC.lower(), ip="10.5.50.20", user=MAC, password="tok-1")
    [host] = gateway.active_hosts()
    assert isinstance(host, ActiveHost)
    assert (host.mac, host.user, host.address) == (MAC, MAC, "10.5.50.20")
    assert host.id.startswith("*")
    assert 1795 <= (host.session_time_left or 0) <= 1800
    assert host.uptime_seconds <= 5
    assert host.bytes_in <= (host.uptime_seconds + 1) * 1_500  # the simulator's upload rate
    found = gateway.find_active(MAC.replace(":", "-").lower())
    assert found is not None and found.id == host.id
    assert simulator.session_timeout_of(MAC) == 1800
    request = responder.access_requests[-1]
    assert request["Calling-Station-Id"] == [MAC]
    assert request["Framed-IP-Address"] == ["10.5.50.20"]
    assert request["NAS-Identifier"] == ["hotspotd-sim"]
    assert request["Service-Type"] == ["Login-User"]
    assert request["NAS-Port-Type"] == ["Wireless-802.11"]
    start = responder.wait_for_accounting("Start")
    assert start["Acct-Session-Id"] == request["Acct-Session-Id"]


def test_identity_and_version(gateway: RouterGateway) -> None:
    assert gateway.identity() == "hotspotd-sim"
    assert gateway.version() == "7.16 (stable)"


def test_reject_raises_with_the_reply_message(gateway: RouterGateway) -> None:
    with pytest.raises(RouterCommandFailed) as failure:
        gateway.login_host(mac=REJECTED_MAC, ip="10.5.50.21", user=REJECTED_MAC, password="x")
    assert failure.value.message == "Not paid: buy time on the portal"
    assert gateway.find_active(REJECTED_MAC) is None


def test_unsigned_radius_reply_means_not_responding(
        gateway: RouterGateway, responder: RadiusResponder) -> None:
    responder.sign_replies = False
    with pytest.raises(RouterCommandFailed) as failure:
        gateway.login_host(mac=MAC, ip="10.5.50.20", user=MAC, password="tok-1")
    assert failure.value.message == "RADIUS server is not responding"
    assert gateway.active_hosts() == []


def test_already_logged_in_is_reported(gateway: RouterGateway) -> None:
    gateway.login_host(mac=MAC, ip="10.5.50.20", user=MAC, password="tok-1")
    with pytest.raises(RouterCommandFailed, match="already logged in"):
        gateway.login_host(mac=MAC, ip="10.5.50.20", user=MAC, password="tok-1")


def test_remove_active_sends_stop_admin_reset(
        gateway: RouterGateway, responder: RadiusResponder) -> None:
    gateway.login_host(mac=MAC, ip="10.5.50.20", user=MAC, password="tok-1")
    assert gateway.remove_active(MAC.lower()) is True
    assert gateway.find_active(MAC) is None
    stop = responder.wait_for_accounting("Stop")
    assert stop["Acct-Terminate-Cause"] == ["Admin-Reset"]
    assert gateway.remove_active(MAC) is False


def test_session_timeout_expires_the_host(responder: RadiusResponder) -> None:
    responder.grants[MAC] = Grant(password="tok-1", session_timeout=1)
    sim = make_simulator(responder)
    sim.start()
    gateway = gateway_for(sim)
    try:
        gateway.login_host(mac=MAC, ip="10.5.50.20", user=MAC, password="tok-1")
        stop = responder.wait_for_accounting("Stop", timeout=4)
        assert stop["Acct-Terminate-Cause"] == ["Session-Timeout"]
        assert gateway.find_active(MAC) is None
    finally:
        gateway.close()
        sim.stop()


def test_wrong_api_password_never_shows_the_password(
        simulator: MikrotikSimulator, caplog: pytest.LogCaptureFixture) -> None:
    wrong = "Wr0ng-pw-do-not-print"
    gateway = gateway_for(simulator, password=wrong)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RouterLoginFailed) as failure:
        gateway.identity()
    text = f"{failure.value} {failure.value.message} {failure.value!r} {gateway!r}"
    assert "invalid user name or password" in text
    assert wrong not in text and wrong not in caplog.text
    assert failure.value.__cause__ is None and failure.value.__suppress_context__


def test_unreachable_when_nothing_listens() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = RouterGateway(host="127.0.0.1", port=port, user=API_USER,
                            password=API_PASSWORD, timeout=1)
    with pytest.raises(RouterUnreachable) as failure:
        gateway.active_hosts()
    assert API_PASSWORD not in str(failure.value)
    with pytest.raises(RouterUnreachable):
        gateway.login_host(mac=MAC, ip="10.5.50.20", user=MAC, password="tok-1")


def test_reconnects_after_the_router_drops_connections(
        gateway: RouterGateway, simulator: MikrotikSimulator) -> None:
    assert gateway.identity() == "hotspotd-sim"
    simulator.drop_api_connections()
    assert gateway.identity() == "hotspotd-sim"  # read-only: reconnected and retried
    simulator.drop_api_connections()
    gateway.login_host(mac=MAC, ip="10.5.50.20", user=MAC, password="tok-1")
    assert gateway.find_active(MAC) is not None


def test_reconnects_after_a_simulator_restart_on_the_same_port(
        responder: RadiusResponder) -> None:
    sim = make_simulator(responder)
    sim.start()
    host, port = sim.api_address
    gateway = gateway_for(sim)
    try:
        assert gateway.identity() == "hotspotd-sim"
        sim.stop()
        with pytest.raises(RouterUnreachable):
            gateway.identity()
        sim = make_simulator(responder, identity="rebooted")
        sim.start(host, port)
        assert gateway.identity() == "rebooted"
    finally:
        gateway.close()
        sim.stop()


def test_login_timeout_reads_back_instead_of_retrying(responder: RadiusResponder) -> None:
    responder.delay = 0.6
    sim = make_simulator(responder, radius_timeout=2.0)
    sim.start()
    host, port = sim.api_address
    gateway = RouterGateway(host=host, port=port, user=API_USER, password=API_PASSWORD,
                            timeout=3, login_timeout=0.2)
    try:
        with pytest.raises(RouterUnreachable):
            gateway.login_host(mac=MAC, ip="10.5.50.20", user=MAC, password="tok-1")
        responder.wait_for_accounting("Start")
        assert len(responder.access_requests) == 1  # no blind second login
        assert gateway.find_active(MAC) is not None
    finally:
        gateway.close()
        sim.stop()
