"""Prompt spam from the venue WiFi (issue 12, 5 and 8), against the real appliance over HTTP.

One client sends purchases as fast as it can with random phone numbers (and, in one test,
from several MACs): every accepted one would put an M-Pesa prompt on a stranger's phone and
make the real buyers wait behind it. Every customer and attacker is a phone at its own
loopback address, registered in the MikroTik simulator's host table, so the appliance knows
the device from the network. Pushes are counted where they land, at the Daraja simulator.
Each test shows the attack fails (refused 429 with Retry-After and why, nothing stored, no
prompt sent) AND an honest customer beside it still buys and gets online.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from support.admin_http import csrf_of
from support.mpesa import (
    PERSON_PREFIX,
    answering,
    buy,
    fast_appliance,
    honest_customer_gets_online,
    portal,
    wait_final,
)
from support.wait import wait_until

from hotspotd.app import Appliance
from hotspotd.ops.privacy import apply_retention, erase_phone, export_phone
from hotspotd.ratelimit import RateLimiter
from hotspotd.simulators.daraja import DarajaSimulator
from hotspotd.simulators.phones import SimulatedPhone, join_wifi

APPROVES = "254700000000"  # the Daraja simulator approves it by itself


@contextmanager
def slow_budget(tmp_path: Path, **limits: Any) -> Iterator[Appliance]:
    """60 Daraja requests a minute and a short wait for a slot: a line forms at once.
    Pending payments are queried rarely, so the budget goes to pushes."""
    with fast_appliance(tmp_path, daraja={"requests_per_minute": 60,
                                          "push_max_wait_seconds": 0.2},
                        settlement={"inline_query_delays": [1.0],
                                    "query_backoff_seconds": [1.0, 10.0]},
                        limits=limits) as running:
        yield running


def strangers(count: int) -> list[str]:
    """Random Safaricom numbers nobody at the venue owns (never an automatic answer)."""
    return [f"2547{random.randint(20_000_000, 99_999_999)}" for _ in range(count)]


def pushes_to(sim: DarajaSimulator, numbers: set[str] | list[str]) -> int:
    wanted = set(numbers)
    return sum(1 for prompt in sim.prompts() if prompt["phone"] in wanted)


def payments_of(appliance: Appliance, mac: str) -> int:
    return int(appliance.db.query_one("SELECT COUNT(*) FROM payments WHERE mac = ?",
                                      (mac,))[0])


def assert_refused(answer: requests.Response, words: str) -> int:
    """A limit's refusal: 429, Retry-After in whole seconds, why, in the body too."""
    assert answer.status_code == 429, answer.text
    retry_after = int(answer.headers["Retry-After"])
    error = answer.json()["error"]
    assert error["code"] == "too_many_requests" and error["retry_after"] == retry_after
    assert words in error["message"] and "min" in error["message"], error
    return retry_after


# --- one device, random numbers ------------------------------------------------------------

def test_prompt_spam_from_one_device_is_refused_and_honest_buyer_gets_online(
        appliance: Appliance) -> None:
    sim = appliance.daraja_simulator
    attacker = join_wifi(appliance.router_simulator, "AA:BB:CC:12:01:01")
    numbers = strangers(50)
    connections = [SimulatedPhone(attacker.mac, attacker.address) for _ in range(6)]
    started = time.monotonic()
    with ThreadPoolExecutor(len(connections)) as pool:
        answers = list(pool.map(lambda n: buy(appliance, numbers[n], connections[n % 6]),
                                range(len(numbers))))
    spent = time.monotonic() - started
    accepted = [a for a in answers if a.status_code == 202]
    assert len(accepted) == 1, [a.status_code for a in answers]
    waits = [assert_refused(a, "already have a payment waiting") for a in answers
             if a is not accepted[0]]
    # At the latest when the open one ends: its prompt's 30 s (+10 s for the round that ends
    # it), or before its push went out, the line's 300 s too.
    assert len(waits) == 49 and all(25 <= wait <= 340 for wait in waits)
    assert pushes_to(sim, numbers) == 1  # one stranger prompted, not fifty
    assert payments_of(appliance, attacker.mac) == 1  # a refused purchase stores nothing
    # Rotating MACs in the request changes nothing: the network says which device it is.
    stored = appliance.db.query_one("SELECT COUNT(*) FROM payments")[0]
    rotated = [attacker.post(f"{portal(appliance)}api/purchases", json={
        "plan_id": 1, "phone": number, "mac": f"AA:BB:CC:12:01:{n + 16:02X}"})
        for n, number in enumerate(strangers(10))]
    assert {answer.status_code for answer in rotated} <= {409, 429}, rotated
    assert appliance.db.query_one("SELECT COUNT(*) FROM payments")[0] == stored
    # The same purchase again (a double tap) is the open one, not a second prompt.
    again = buy(appliance, _number_of(appliance, accepted[0].json()["id"]), attacker)
    assert again.status_code == 202 and again.json()["id"] == accepted[0].json()["id"]
    assert pushes_to(sim, numbers) == 1
    # In Swahili, on the portal's form too: why and when, with Retry-After.
    form = form_purchase(appliance, attacker, strangers(1)[0], lang="sw")
    assert form.status_code == 429 and int(form.headers["Retry-After"]) >= 25
    assert "Tayari una malipo yanayosubiri" in form.text and "dakika" in form.text
    prompted = honest_customer_gets_online(appliance, "AA:BB:CC:12:01:99").prompted
    assert prompted < 2.0
    print(f"\n50 purchases from one device in {spent:.2f} s: 1 accepted, 49 refused 429;"
          f" {pushes_to(sim, numbers)} stranger prompted; honest buyer prompted in"
          f" {prompted:.2f} s")


def test_a_client_changing_its_mac_at_one_address_stays_one_device(
        appliance: Appliance) -> None:
    """The attacker re-joins the WiFi with a new MAC before each purchase and keeps its
    address (what bench/hostile_wifi.py's spammer did with 8 MACs): the router's table names
    a new device each time, but the address's open purchase and hourly count still hold."""
    sim = appliance.daraja_simulator
    address = join_wifi(appliance.router_simulator, "AA:BB:CC:12:07:00").address
    numbers = strangers(8)
    answers = []
    for n, number in enumerate(numbers):
        rotated = join_wifi(appliance.router_simulator, f"AA:BB:CC:12:07:{n + 1:02X}", address)
        appliance.locator.forget(address)
        answers.append(buy(appliance, number, rotated))
    assert [a.status_code for a in answers].count(202) == 1, [a.text for a in answers]
    for answer in answers[1:]:
        assert_refused(answer, "already have a payment waiting")
    assert pushes_to(sim, numbers) == 1
    prompted = honest_customer_gets_online(appliance, "AA:BB:CC:12:07:99").prompted
    assert prompted < 2.0


def _number_of(appliance: Appliance, public_id: str) -> str:
    return str(appliance.db.query_one("SELECT phone FROM payments WHERE public_id = ?",
                                      (public_id,))["phone"])


def form_purchase(appliance: Appliance, phone: SimulatedPhone, number: str,
                  lang: str = "en") -> requests.Response:
    """The portal's own form: the plans page (for its CSRF token), then POST /buy."""
    page = phone.get(f"{portal(appliance)}?lang={lang}")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text[:300]
    return phone.post(f"{portal(appliance)}buy", allow_redirects=False,
                      data={"plan_id": "1", "phone": number, "csrf": token[1], "lang": lang})


def test_rotating_numbers_one_after_another_stops_at_the_hourly_limit_per_device(
        appliance: Appliance) -> None:
    sim = appliance.daraja_simulator
    attacker = join_wifi(appliance.router_simulator, "AA:BB:CC:12:02:01")
    # Numbers that end at once, unpaid (low balance, rule limited, wrong PIN): one open
    # purchase at a time does not slow this attacker down; the hourly limit does.
    numbers = ["254700000001", "254700000017", "254700000020"] * 2
    for number in numbers[:5]:
        created = buy(appliance, number, attacker)
        assert created.status_code == 202, created.text
        done = wait_final(appliance, created.json()["id"], 30, device=attacker)
        assert done["status"] == "failed"
    before = len(sim.prompts())
    wait = assert_refused(buy(appliance, numbers[5], attacker), "Too many unpaid payment")
    assert 3500 < wait <= 3600  # the oldest of the five leaves the hour
    assert len(sim.prompts()) == before and payments_of(appliance, attacker.mac) == 5
    assert honest_customer_gets_online(appliance, "AA:BB:CC:12:02:99").prompted < 2.0


# --- one target number ----------------------------------------------------------------------

def test_a_number_that_keeps_cancelling_cools_down_whichever_device_asks(
        appliance: Appliance) -> None:
    sim = appliance.daraja_simulator
    victim = strangers(1)[0]
    # The victim cancels, lets one time out (1037), cancels again; each prompt came from
    # another of the attacker's devices.
    with answering(sim, {victim: ["cancel", "ignore", "cancel"]}):
        for n, code in enumerate(("1032", "1037", "1032")):
            device = join_wifi(appliance.router_simulator, f"AA:BB:CC:12:03:0{n}")
            created = buy(appliance, victim, device)
            assert created.status_code == 202, created.text
            done = wait_final(appliance, created.json()["id"], 30, device=device)
            assert done["result_code"] == code
    fresh = join_wifi(appliance.router_simulator, "AA:BB:CC:12:03:09")
    wait = assert_refused(buy(appliance, victim, fresh), "cancelled or did not answer")
    assert 1700 < wait <= 1800  # [limits] cancel_cooldown_seconds
    swahili = buy(appliance, victim, fresh, lang="sw").json()["error"]["message"]
    assert "haikujibu" in swahili and "dakika 30" in swahili
    assert pushes_to(sim, [victim]) == 3 and payments_of(appliance, fresh.mac) == 0
    # The device that was refused buys for its owner's number at once: the number cooled
    # down, not the device; and a customer beside it buys too.
    assert honest_customer_gets_online(appliance, fresh).prompted < 2.0
    assert honest_customer_gets_online(appliance, "AA:BB:CC:12:03:99").prompted < 2.0


# --- the payment line -----------------------------------------------------------------------

def test_one_device_cannot_fill_the_payment_line(tmp_path: Path) -> None:
    with slow_budget(tmp_path) as appliance:
        sim = appliance.daraja_simulator
        attacker = join_wifi(appliance.router_simulator, "AA:BB:CC:12:04:01")
        honest = [join_wifi(appliance.router_simulator, f"AA:BB:CC:12:04:1{n}")
                  for n in range(3)]
        numbers = strangers(20)
        with answering(sim, {}), ThreadPoolExecutor(8) as pool:
            flood = [pool.submit(buy, appliance, number,
                                 SimulatedPhone(attacker.mac, attacker.address))
                     for number in numbers]
            buyers = [pool.submit(buy, appliance, f"{PERSON_PREFIX}{n:04d}", phone)
                      for n, phone in enumerate(honest)]
            answers = [f.result() for f in flood]
            bought = [b.result() for b in buyers]
            assert [a.status_code for a in bought] == [202] * 3, [a.text for a in bought]
            in_line = [b for b in bought if b.json()["queued"]]
            assert in_line, "no line formed: the test proves nothing"
            assert sum(a.status_code == 202 for a in answers) == 1
            for refused in (a for a in answers if a.status_code != 202):
                assert_refused(refused, "already have a payment waiting")
            assert payments_of(appliance, attacker.mac) == 1  # one place in line, at most
            for phone, answer in zip(honest, bought, strict=True):
                done = wait_final(appliance, answer.json()["id"], 30, device=phone)
                assert done["status"] == "completed"
        assert pushes_to(sim, numbers) == 1
        for phone in honest:
            wait_until(lambda p=phone: any(row["mac-address"] == p.mac for row in
                                           appliance.router_simulator.active_hosts()),
                       timeout=20, message=f"{phone.mac} online")


def test_many_macs_cannot_grow_the_line_past_its_cap(tmp_path: Path) -> None:
    """Even a client with many MACs (each a device on the WiFi) gets one place each, and
    the line never holds more than [limits] line_max: the rest are refused with the time a
    place takes, and an honest buyer who comes back after Retry-After gets in."""
    with slow_budget(tmp_path, line_max=4) as appliance:
        sim = appliance.daraja_simulator
        macs = [join_wifi(appliance.router_simulator, f"AA:BB:CC:12:05:{n:02X}")
                for n in range(12)]
        numbers = strangers(len(macs))
        longest = [0]
        watching = threading.Event()

        def watch() -> None:
            while not watching.wait(0.02):
                longest[0] = max(longest[0], int(appliance.db.query_one(
                    "SELECT COUNT(*) FROM payments WHERE queued_at IS NOT NULL AND"
                    " status = 'pending'")[0]))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        with answering(sim, {}):
            with ThreadPoolExecutor(len(macs)) as pool:
                answers = list(pool.map(lambda pair: buy(appliance, pair[1], pair[0]),
                                        zip(macs, numbers, strict=True)))
            full = [a for a in answers if a.status_code == 429]
            assert full, [a.status_code for a in answers]
            for refused in full:
                assert 1 <= assert_refused(refused, "the line for M-Pesa is full") <= 30
            stored = appliance.db.query_one("SELECT COUNT(*) FROM payments")[0]
            assert stored == len(answers) - len(full)  # refused ones stored nothing
            honest = join_wifi(appliance.router_simulator, "AA:BB:CC:12:05:99")
            public_id = buy_when_there_is_room(appliance, honest, f"{PERSON_PREFIX}0099")
            assert wait_final(appliance, public_id, 60, device=honest)["status"] == "completed"
        watching.set()
        watcher.join()
        assert longest[0] <= 4
        wait_until(lambda: any(row["mac-address"] == honest.mac
                               for row in appliance.router_simulator.active_hosts()),
                   timeout=20, message="the honest buyer online")


def buy_when_there_is_room(appliance: Appliance, phone: SimulatedPhone, number: str) -> str:
    """Buy; on a full line wait Retry-After and try again (as the page tells a person)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = buy(appliance, number, phone)
        if answer.status_code == 202:
            return str(answer.json()["id"])
        time.sleep(assert_refused(answer, "the line for M-Pesa is full"))
    raise AssertionError("the honest buyer never got a place in line")


# --- the owner blocked the device -----------------------------------------------------------

def test_a_blocked_device_cannot_start_a_purchase(appliance: Appliance,
                                                  owner: requests.Session) -> None:
    sim = appliance.daraja_simulator
    blocked = join_wifi(appliance.router_simulator, "AA:BB:CC:12:06:01")
    base = portal(appliance) + "admin/"
    token = csrf_of(owner.get(base + "devices", timeout=5).text)
    owner.post(base + "devices/block", timeout=10, data={
        "mac": blocked.mac, "reason": "prompt spam", "csrf_token": token}).raise_for_status()
    number = strangers(1)[0]
    refused = buy(appliance, number, blocked)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "device_blocked"
    assert "blocked" in refused.json()["error"]["message"]
    assert "kimezuiwa" in buy(appliance, number, blocked, lang="sw").json()["error"]["message"]
    form = form_purchase(appliance, blocked, number)
    assert form.status_code == 403 and "blocked" in form.text
    assert payments_of(appliance, blocked.mac) == 0 and pushes_to(sim, [number]) == 0
    assert honest_customer_gets_online(appliance, "AA:BB:CC:12:06:99").prompted < 2.0


# --- the numbers the limits saw are personal data -------------------------------------------

def test_export_and_erase_cover_rate_limit_rows_holding_the_number(
        appliance: Appliance) -> None:
    """A stranger whose number was spammed asks what the venue holds about it, then asks
    to be erased. The limits count the payments table (covered as before); rate-limit rows
    whose key holds a number (`push:phone:...` of earlier versions, any limit keyed by a
    number) are exported, erased, and dropped by retention once no window needs them."""
    victim = strangers(1)[0]
    device = join_wifi(appliance.router_simulator, "AA:BB:CC:12:07:01")
    with answering(appliance.daraja_simulator, {victim: ["cancel"]}):
        created = buy(appliance, victim, device)
        done = wait_final(appliance, created.json()["id"], 30, device=device)
        assert done["result_code"] == "1032"
    limiter = RateLimiter(appliance.db)
    limiter.hit(f"push:phone:{victim}", limit=5, window=600)
    limiter.hit(f"push:cancel:{victim}", limit=5, window=600)
    limiter.hit("voucher:mac:AA:BB:CC:12:07:01", limit=5, window=600)
    exported = export_phone(appliance.db, victim, now=time.time(), actor="test")["data"]
    assert sorted(row["key"] for row in exported["rate_limits"]) == [
        f"push:cancel:{victim}", f"push:phone:{victim}"]
    assert [p["phone"] for p in exported["payments"]] == [victim]
    assert erase_phone(appliance.db, victim, now=time.time(), actor="test") >= 3
    assert not appliance.db.query("SELECT key FROM rate_limits WHERE instr(key, ?) > 0",
                                  (victim,))
    assert appliance.db.query_one("SELECT 1 FROM rate_limits WHERE key = ?",
                                  ("voucher:mac:AA:BB:CC:12:07:01",)) is not None
    assert export_phone(appliance.db, victim, now=time.time(), actor="test")["data"][
        "payments"] == []
    # Retention: a row holding a number, older than any window, goes; a fresh one stays.
    other = strangers(1)[0]
    with appliance.db.write() as conn:
        conn.execute("INSERT INTO rate_limits (key, window_start, count) VALUES (?, ?, 1),"
                     " (?, ?, 1)", (f"push:phone:{other}", time.time() - 2 * 86400,
                                    f"push:cancel:{other}", time.time()))
    apply_retention(appliance.db, retention_days=365, now=time.time())
    assert [r["key"] for r in appliance.db.query(
        "SELECT key FROM rate_limits WHERE instr(key, ?) > 0", (other,))] == [
        f"push:cancel:{other}"]
    assert victim not in str([dict(r) for r in appliance.db.query(
        "SELECT * FROM privacy_requests")])
    assert honest_customer_gets_online(appliance, "AA:BB:CC:12:07:99").prompted < 2.0
