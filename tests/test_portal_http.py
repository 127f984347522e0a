"""The captive portal over real HTTP (no browser): CSRF on every form, voucher and recovery
attempts rate limited, recovery once and saying nothing about other people's receipts,
the RFC 8908 API, the long poll, compression, and the router login fallback (CHAP)."""

from __future__ import annotations

import gzip
import hashlib
import re
import time
from typing import Any

import pytest
import requests
from support.wait import wait_until

from hotspotd.access.access import device_password
from hotspotd.app import Appliance
from hotspotd.ledger.grants import grant_time
from hotspotd.ledger.vouchers import create_batch
from hotspotd.simulators.phones import SimulatedPhone, join_wifi
from hotspotd.web.i18n import MESSAGES, format_duration, format_money
from hotspotd.web.portal.router_login import chap_response, decode_octal_escapes

AUTO_APPROVE = "0700000000"


@pytest.fixture
def appliance_config() -> dict[str, dict[str, Any]]:
    return {"portal": {"voucher_attempts": 3, "recovery_attempts": 4}}


class Phone:
    """A customer's browser on a phone of the WiFi (its own address in the router's host
    table): keeps cookies, reads the CSRF token from the last page, and passes on the
    `mac`/`ip` hints the router's redirect would carry (written as the test says)."""

    def __init__(self, appliance: Appliance, mac: str, address: str | None = None) -> None:
        self.url = appliance.addresses["portal_url"]
        device = join_wifi(appliance.router_simulator, mac, address)
        self.mac, self.ip, self.session = mac, device.address, device.session
        self.token = ""

    def open(self, **params: str) -> requests.Response:
        page = self.session.get(self.url, params={"mac": self.mac, "ip": self.ip, **params},
                                timeout=5)
        self.token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        return page

    def post(self, path: str, **fields: str) -> requests.Response:
        data = {"mac": self.mac, "ip": self.ip, "csrf": self.token, **fields}
        return self.session.post(self.url + path, data=data, timeout=10,
                                 allow_redirects=False)

    def buy(self, plan_id: str = "1", phone: str = AUTO_APPROVE, **extra: str) -> str:
        """Buy and wait until paid; returns the status page's path."""
        self.open()
        posted = self.post("buy", plan_id=plan_id, phone=phone, **extra)
        assert posted.status_code == 303, posted.text
        public_id = posted.headers["Location"].split("/status/")[1].split("?")[0]
        wait_paid(self, public_id)
        return posted.headers["Location"]


def wait_paid(phone: Phone, public_id: str) -> dict[str, Any]:
    """The purchase's end, by the long poll the status page uses (it answers on a change)."""
    url = f"{phone.url}live/purchase/{public_id}?phase=prompt&wait=5"
    view = wait_until(lambda: (body := phone.session.get(url, timeout=10).json())["status"]
                      != "pending" and body, interval=0, message=f"purchase {public_id} paid")
    assert view["status"] == "completed", view
    return view


def receipt_of(appliance: Appliance, mac: str) -> str:
    return appliance.db.query_one("SELECT receipt FROM payments WHERE mac = ? AND receipt"
                                  " IS NOT NULL ORDER BY id DESC LIMIT 1", (mac,))[0]


def visible_text(html: str) -> str:
    html = re.sub(r"<script.*?</script>|<style.*?</style>", "", html, flags=re.S)
    html = re.sub(r'name="csrf" value="[^"]*"', "", html)
    return re.sub(r"\s+", " ", html)


def test_forms_without_the_csrf_token_change_nothing(appliance: Appliance, portal: str) -> None:
    phone = Phone(appliance, "AA:BB:CC:05:01:01")
    phone.open()
    before = appliance.db.query_one("SELECT COUNT(*) FROM payments")[0]
    same_device = SimulatedPhone(phone.mac, phone.ip)  # its address, not its cookie
    for path, fields in (("buy", {"plan_id": "1", "phone": AUTO_APPROVE}),
                         ("voucher", {"code": "ABCD2345"}),
                         ("recover", {"receipt": "SIM1234567", "phone": AUTO_APPROVE})):
        forged = same_device.post(portal + path, data={"mac": phone.mac, **fields}, timeout=5)
        assert forged.status_code == 400 and "expired" in forged.text
        stolen = same_device.post(portal + path, timeout=5, data={"mac": phone.mac,
                                                                  "csrf": phone.token,
                                                                  **fields})
        assert stolen.status_code == 400, "a token is only good with its own cookie"
    assert appliance.db.query_one("SELECT COUNT(*) FROM payments")[0] == before


def test_first_view_is_compressed_and_small(appliance: Appliance, portal: str) -> None:
    phone = Phone(appliance, "AA:BB:CC:05:01:02")
    response = phone.session.get(portal, params={"mac": phone.mac, "ip": phone.ip},
                                 headers={"Accept-Encoding": "gzip"}, timeout=5, stream=True)
    raw = response.raw.read()
    assert response.headers["Content-Encoding"] == "gzip"
    assert len(raw) < 30_000 and len(gzip.decompress(raw)) > len(raw)
    assert "Set-Cookie" in response.headers


def test_voucher_guessing_is_rate_limited(appliance: Appliance, portal: str) -> None:
    phone = Phone(appliance, "AA:BB:CC:05:01:03")
    phone.open()
    answers = [phone.post("voucher", code=f"WRONG{n:03d}") for n in range(4)]
    assert [a.status_code for a in answers] == [400, 400, 400, 429]
    assert "not valid" in answers[0].text
    assert "Too many attempts" in answers[3].text


def test_recovery_moves_time_once_and_tells_strangers_nothing(
        appliance: Appliance, portal: str) -> None:
    payer = Phone(appliance, "AA:BB:CC:05:01:04")
    payer.buy(plan_id="2")
    receipt = receipt_of(appliance, payer.mac)
    payer.open()
    same = payer.post("recover", receipt=receipt, phone=AUTO_APPROVE)
    assert same.status_code == 400 and "already on this device" in same.text
    stranger = Phone(appliance, "AA:BB:CC:05:01:05")
    stranger.open()
    wrong_phone = stranger.post("recover", receipt=receipt, phone="0722000000")
    unknown = stranger.post("recover", receipt="ZZZ9999999", phone="0722000000")
    assert wrong_phone.status_code == unknown.status_code == 400
    assert visible_text(wrong_phone.text) == visible_text(unknown.text.replace(
        "ZZZ9999999", receipt))
    new_device = Phone(appliance, "AA:BB:CC:05:01:06")
    new_device.open()
    moved = new_device.post("recover", receipt=f" {receipt.lower()} ", phone="+254 700 000000")
    assert moved.status_code == 200 and "moved to this device" in moved.text
    again = new_device.post("recover", receipt=receipt, phone=AUTO_APPROVE)
    assert again.status_code == 400 and "only once" in again.text
    left = {phone.mac: phone.session.get(f"{portal}api/device", timeout=5).json()[
        "seconds_remaining"] for phone in (payer, new_device)}
    assert left[payer.mac] == 0 and 3500 < left[new_device.mac] <= 3600
    row = appliance.db.query_one("SELECT * FROM recoveries WHERE receipt = ?", (receipt,))
    assert (row["from_mac"], row["to_mac"]) == (payer.mac, new_device.mac)
    ops = appliance.db.query_one("SELECT COUNT(*) FROM router_ops WHERE mac = ? AND action ="
                                 " 'disconnect'", (payer.mac,))[0]
    assert ops == 1, "the old device is taken off"


def test_recovery_attempts_are_rate_limited(appliance: Appliance, portal: str) -> None:
    guesser = Phone(appliance, "AA:BB:CC:05:01:07")
    guesser.open()
    codes = [guesser.post("recover", receipt=f"SIM{n:07d}", phone=AUTO_APPROVE).status_code
             for n in range(5)]
    assert codes == [400, 400, 400, 400, 429]
    # The guesser changes its MAC and gets the same address again: a new device to the
    # network, but the wider per-address limit still counts its attempts.
    other_device = Phone(appliance, "AA:BB:CC:05:01:0D", guesser.ip)
    other_device.open()
    assert other_device.post("recover", receipt="SIM0000009", phone=AUTO_APPROVE
                             ).status_code == 400, "the per-address limit is wider"


def test_captive_portal_api_rfc8908(appliance: Appliance, portal: str) -> None:
    api = portal + "captive-portal/api"
    unknown = requests.get(api, timeout=5)  # not a device of the hotspot
    assert unknown.headers["Content-Type"] == "application/captive+json"
    assert unknown.json()["captive"] is True
    assert unknown.json()["user-portal-url"] == portal
    phone = Phone(appliance, "AA:BB:CC:05:01:08")
    assert phone.session.get(api, timeout=5).json()["captive"] is True
    with appliance.db.write() as conn:
        grant_time(conn, mac="AA:BB:CC:05:01:08", seconds=600, now=time.time(), plan_id=1,
                   rate_limit=None, source="test")
    body = phone.session.get(api, timeout=5).json()
    assert body["captive"] is False and body["can-extend-session"] is True
    assert 590 <= body["seconds-remaining"] <= 600
    assert body["user-portal-url"] == portal, "the portal finds the device itself: no MAC"
    neighbour = Phone(appliance, "AA:BB:CC:05:01:18")
    assert neighbour.session.get(api, timeout=5).json()["captive"] is True


def test_long_poll_answers_on_change_and_waits_otherwise(appliance: Appliance, portal: str) -> None:
    mac = "AA:BB:CC:05:01:09"
    phone = Phone(appliance, mac)
    started = time.monotonic()
    quiet = phone.session.get(f"{portal}live/device/{mac}?expires_at=0&wait=1", timeout=5).json()
    assert quiet["seconds_remaining"] == 0 and time.monotonic() - started >= 0.9
    phone.buy()
    started = time.monotonic()
    changed = phone.session.get(f"{portal}live/device/{mac}?expires_at=0&wait=10",
                                timeout=15).json()
    assert changed["seconds_remaining"] > 1700 and time.monotonic() - started < 1


def test_paid_device_gets_the_router_login_form_with_chap_done_here(
        appliance: Appliance, portal: str) -> None:
    chap_id, challenge = r"\316", r"\073\101\377\000\012"
    router = {"link-login-only": "http://10.5.50.1/login", "chap-id": chap_id,
              "chap-challenge": challenge, "link-orig": "http://example.com/"}
    own = Phone(appliance, "AA:BB:CC:05:01:0A")
    status_path = own.buy(**router)
    page = own.session.get(portal.rstrip("/") + status_path, timeout=5).text
    form = re.search(r'<form id="router-login" method="post" action="([^"]+)"', page)
    assert form and form.group(1) == "http://10.5.50.1/login"
    password = appliance.config.radius.mac_password
    own_password = device_password(password, "AA:BB:CC:05:01:0A")  # this device's own
    expected = hashlib.md5(b"\xce" + own_password.encode() + b";A\xff\x00\n").hexdigest()
    assert f'name="password" value="{expected}"' in page
    assert password not in page, "the MAC-login password never reaches the browser"
    other = Phone(appliance, "AA:BB:CC:05:01:0B")  # another device: not its page
    seen = other.session.get(portal.rstrip("/") + status_path, timeout=5)
    assert seen.status_code == 404 and 'id="router-login"' not in seen.text


def test_octal_escapes_and_chap_match_mikrotik() -> None:
    assert decode_octal_escapes(r"\316\073A\0") == b"\xce;A\x00"
    assert chap_response(r"\001", "pw", r"\002") == hashlib.md5(b"\x01pw\x02").hexdigest()


def test_words_exist_in_both_languages_and_durations_read_locally() -> None:
    assert set(MESSAGES["en"]) == set(MESSAGES["sw"])
    assert [format_duration(s, "en") for s in (1800, 3600, 5400, 86400, 604800)] == [
        "30 min", "1 hour", "1 hour 30 min", "1 day", "1 week"]
    assert [format_duration(s, "sw") for s in (1800, 3600, 7200, 86400, 604800)] == [
        "dakika 30", "saa 1", "saa 2", "siku 1", "wiki 1"]
    assert format_money(1000) == "KES 1,000"


def test_swahili_by_accept_language_and_status_in_swahili(appliance: Appliance,
                                                         portal: str) -> None:
    phone = Phone(appliance, "AA:BB:CC:05:01:0C")
    phone.session.headers["Accept-Language"] = "sw-KE,sw;q=0.9,en;q=0.5"
    page = phone.open()
    assert "Lipa kwa M-Pesa" in page.text and 'lang="sw"' in page.text
    wrong = phone.post("voucher", code="NOPE2345", lang="sw")
    assert wrong.status_code == 400 and "si sahihi" in wrong.text
    status_path = phone.buy()
    status = phone.session.get(portal.rstrip("/") + status_path, timeout=5).text
    assert "Umeunganishwa" in status or "Tunakuunganisha" in status


def test_voucher_for_a_mac_written_another_way(appliance: Appliance, portal: str) -> None:
    _, vouchers = create_batch(appliance.db, plan_id=1, count=1, now=appliance.now())
    phone = Phone(appliance, "aa-bb-cc-05-01-0e")  # the router's hint, written its own way
    phone.open()
    assert phone.post("voucher", code=vouchers[0].code.lower()).status_code == 200
    device = phone.session.get(f"{portal}api/devices/AA:BB:CC:05:01:0E", timeout=5).json()
    assert 1700 < device["seconds_remaining"] <= 1800
