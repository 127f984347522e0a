"""The whole path, as outsiders see it: the real `hotspotd demo` process, bought through HTTP,
checked with FreeRADIUS's radclient and the routeros-api library against the router simulator.

A customer is a phone that joins the demo's WiFi (the router simulator's host table, through
demo.json's router_status_url) at its own loopback address; the demo places each request
by that address, never by a MAC the request names.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import routeros_api
from support.mpesa import buy, wait_final
from support.phones import join_router_page
from support.radclient import run_radclient
from support.wait import wait_until

from hotspotd.simulators.phones import SimulatedPhone

TEST_PHONE = "254708374149"
PLAN_SECONDS = 1800  # the first demo plan: 30 minutes, KES 10, 1M/2M
PLAN_RATE = "1M/2M"


# Module scope, on purpose: one `hotspotd demo` process (a subprocess that takes seconds to
# start and stop) serves the module. Each test uses MACs of its own and reads only what it
# made, so none depends on another having run.
@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("demo")
    log_path = data_dir / "demo.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hotspotd.cli", "demo", "--data-dir", str(data_dir)],
            stdout=log, stderr=subprocess.STDOUT, cwd="/", env={**os.environ,
                                                            "PYTHONUNBUFFERED": "1"})
    try:
        info = _wait_for_demo_json(data_dir / "demo.json", process, log_path)
        yield info
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        assert code == 0, log_path.read_text()[-3000:]


def _wait_for_demo_json(path: Path, process: subprocess.Popen[bytes],
                        log_path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"hotspotd demo exited {process.returncode}:\n{log_path.read_text()}")
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.1)
    pytest.fail(f"demo.json did not appear:\n{log_path.read_text()}")


def join(info: dict[str, Any], mac: str) -> SimulatedPhone:
    """A phone with `mac` joins the demo's WiFi at an address of its own."""
    return join_router_page(info["router_status_url"], mac)


def bought(info: dict[str, Any], phone: SimulatedPhone) -> dict[str, Any]:
    """`phone` buys plan 1 for TEST_PHONE; the purchase as it ends."""
    purchase = buy(info["portal_url"], TEST_PHONE, phone)
    assert purchase.status_code == 202 and purchase.json()["status"] == "pending", \
        purchase.text
    return wait_final(info["portal_url"], purchase.json()["id"], device=phone)


def radius_login(info: dict[str, Any], mac: str) -> Any:
    radius = info["radius"]
    return run_radclient(radius["auth_port"], "auth", radius["secret"], {
        "User-Name": mac, "User-Password": radius["mac_password"],
        "Calling-Station-Id": mac, "NAS-Identifier": "e2e-test"}, host=radius["host"])


def active_hosts(info: dict[str, Any]) -> list[dict[str, str]]:
    router = info["router"]
    pool = routeros_api.RouterOsApiPool(router["api_host"], username=router["user"],
                                        password=router["password"], port=router["api_port"],
                                        plaintext_login=True)
    try:
        return pool.get_api().get_resource("/ip/hotspot/active").get()
    finally:
        pool.disconnect()


def host_for(info: dict[str, Any], mac: str) -> dict[str, str] | None:
    return next((row for row in active_hosts(info) if row.get("mac-address") == mac), None)


def seconds_of(duration: str) -> int:
    units = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
    total, number = 0, ""
    for char in duration:
        if char.isdigit():
            number += char
        else:
            total += int(number) * units[char]
            number = ""
    return total


def test_demo_json_lists_every_address(demo: dict[str, Any]) -> None:
    for key in ("portal_url", "phone_url", "daraja_url", "router_status_url", "database"):
        assert demo[key]
    assert set(demo["radius"]) >= {"host", "auth_port", "acct_port", "secret", "mac_password"}
    assert set(demo["router"]) >= {"api_host", "api_port", "user", "password"}
    assert requests.get(demo["phone_url"], timeout=5).status_code == 200
    assert Path(demo["database"]).exists()
    # This machine's browser is the demo's own phone: the router lists it at its address.
    own = requests.get(demo["portal_url"] + "api/device", timeout=5)
    assert own.status_code == 200, own.text
    assert (own.json()["mac"], demo["demo_ip"]) == (demo["demo_mac"], "127.0.0.1")


def test_buy_then_online_then_extend(demo: dict[str, Any]) -> None:
    mac = "AA:BB:CC:10:20:30"
    phone = join(demo, mac)
    first = bought(demo, phone)
    assert first["status"] == "completed", first
    assert abs(first["seconds_remaining"] - PLAN_SECONDS) <= 5

    # The router simulator logged the device in through the RouterOS API, at the address
    # its requests came from.
    row = wait_until(lambda: host_for(demo, mac), message=f"{mac} online")
    assert row["address"] == phone.address
    assert abs(seconds_of(row["session-time-left"]) - PLAN_SECONDS) <= 5

    # An independent RADIUS client gets the same answer the router got.
    reply = radius_login(demo, mac)
    assert reply.code == "Access-Accept", reply.output
    assert abs(int(reply.attributes["Session-Timeout"]) - PLAN_SECONDS) <= 5
    assert reply.attributes["Mikrotik-Rate-Limit"] == PLAN_RATE
    assert "Message-Authenticator" in reply.attributes, reply.output

    # Buying again stacks the time and the router's session is extended.
    second = bought(demo, phone)
    assert second["status"] == "completed", second
    assert abs(second["seconds_remaining"] - 2 * PLAN_SECONDS) <= 10
    extended = wait_until(lambda: (r := host_for(demo, mac)) and
                          seconds_of(r["session-time-left"]) > PLAN_SECONDS + 60 and r,
                          message="the router's session extended")
    assert abs(seconds_of(extended["session-time-left"]) - 2 * PLAN_SECONDS) <= 10
    again = radius_login(demo, mac)
    assert abs(int(again.attributes["Session-Timeout"]) - 2 * PLAN_SECONDS) <= 10

    device = phone.get(f"{demo['portal_url']}api/devices/{mac}", timeout=5).json()
    assert abs(device["seconds_remaining"] - 2 * PLAN_SECONDS) <= 10
    assert "phone" not in json.dumps(device)


def test_unknown_device_is_rejected(demo: dict[str, Any]) -> None:
    reply = radius_login(demo, "DE:AD:BE:EF:00:01")
    assert reply.code == "Access-Reject", reply.output
    assert reply.attributes.get("Reply-Message")
    assert "Message-Authenticator" in reply.attributes, reply.output


def test_bad_phone_is_a_clear_error(demo: dict[str, Any]) -> None:
    phone = join(demo, "AA:BB:CC:10:20:31")
    response = phone.post(demo["portal_url"] + "api/purchases", timeout=5, json={
        "plan_id": 1, "phone": "12345"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_phone"
    assert "0712" in error["message"]
