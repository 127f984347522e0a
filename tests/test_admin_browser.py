"""The owner UI in headless Chromium (Debian's package) against the whole demo appliance:
login and lockout, dashboard figures against a seeded database, the story of a purchase made
through the portal API, re-query, disconnect seen by the router simulator, give time, block,
assigning unmatched money, plan edits, voucher batch + print + redemption on the portal,
CSV export. Screenshots of each main screen go to bench/results/admin/."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from support.admin_http import OWNER, add_account, add_owner_and_cashier
from support.browser import launched_chromium
from support.mpesa import accepted, buy
from support.wait import wait_until

from hotspotd.app import Appliance
from hotspotd.ledger.grants import grant_time

expect = pytest.importorskip("playwright.sync_api").expect

SHOTS = Path(__file__).resolve().parents[1] / "bench" / "results" / "admin"
BUYER_MAC = "AA:BB:CC:06:00:01"
VENUE_TZ = timezone(timedelta(minutes=180))

@pytest.fixture
def appliance_config() -> dict[str, dict[str, Any]]:
    return {"admin": {"login_attempts": 3}}


# Module scope, on purpose: Chromium takes about a second to start. Each test opens its own
# browser context (own cookies) on its own appliance, so nothing else is shared.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as chromium:
        yield chromium


@pytest.fixture
def base(portal: str) -> str:
    return portal + "admin/"


@pytest.fixture
def page(browser: Any, base: str, appliance: Appliance) -> Iterator[Any]:
    """A logged-in owner tab (laptop-sized)."""
    add_account(appliance.db, OWNER)
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.goto(base)
    assert tab.url.startswith(base + "login")
    tab.fill("#username", OWNER[0])
    tab.fill("#password", OWNER[1])
    tab.click("button[type=submit]")
    expect(tab.locator("h1")).to_have_text("Dashboard")
    yield tab
    context.close()


def shot(tab: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_login_page_refuses_a_wrong_password(browser: Any, base: str,
                                             appliance: Appliance) -> None:
    add_account(appliance.db, OWNER)
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(base + "payments")
    assert "/admin/login" in tab.url
    tab.fill("#username", OWNER[0])
    tab.fill("#password", "not the password")
    shot(tab, "login")
    tab.click("button[type=submit]")
    expect(tab.locator("#login-error")).to_have_text("Wrong username or password.")
    tab.fill("#password", OWNER[1])
    tab.click("button[type=submit]")
    expect(tab.locator("h1")).to_have_text("Payments")  # back where it was going
    context.close()


def test_lockout_after_wrong_passwords(browser: Any, base: str, appliance: Appliance) -> None:
    add_owner_and_cashier(appliance.db, cashier=("lockme", "lockme password 1"))
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(base + "login")
    for _ in range(3):
        tab.fill("#username", "lockme")
        tab.fill("#password", "guess guess guess")
        tab.click("button[type=submit]")
        expect(tab.locator("#login-error")).to_have_text("Wrong username or password.")
    tab.fill("#password", "lockme password 1")  # right, but too late
    tab.click("button[type=submit]")
    expect(tab.locator("#login-error")).to_contain_text("Too many wrong passwords")
    shot(tab, "lockout")
    context.close()


def seed(appliance: Appliance) -> dict[str, float]:
    """Payments at known instants: today, yesterday, 40 days ago; two online sessions."""
    now = time.time()
    rows = [  # (created_at, status, amount, paid_amount)
        (now - 1, "completed", 20, 20), (now - 2, "completed", 80, None),
        (now - 3, "failed", 10, None), (now - 4, "pending", 20, None),
        (now - 86400, "completed", 80, 80), (now - 40 * 86400, "completed", 400, 400)]
    with appliance.db.write() as conn:
        for index, (at, status, amount, paid) in enumerate(rows):
            conn.execute(
                "INSERT INTO payments (public_id, plan_id, mac, phone, amount, status,"
                " push_state, paid_amount, receipt, created_at) VALUES (?, 1, ?, ?, ?, ?,"
                " 'sent', ?, ?, ?)", (f"seed{index}", f"AA:BB:CC:06:01:{index:02d}",
                                      f"25471100{index:04d}", amount, status, paid,
                                      f"SEED{index:06d}" if status == "completed" else None,
                                      at))
        for index in range(2):
            conn.execute("INSERT INTO radius_sessions (session_id, nas_address, mac, status,"
                         " started_at, updated_at) VALUES (?, '10.9.9.9', ?, 'online', ?, ?)",
                         (f"seed-{index}", f"AA:BB:CC:06:02:{index:02d}", now, now))
        conn.execute("INSERT INTO unmatched_payments (source, receipt, amount, phone, reason,"
                     " received_at) VALUES ('c2b', 'UNMATCH01', 20, '254711009999',"
                     " 'account code not found', ?)", (now,))
    return {"now": now, **{f"at{i}": row[0] for i, row in enumerate(rows)}}


def expected_periods(at: dict[str, float]) -> dict[str, tuple[int, int, int]]:
    """(revenue, purchases, completed) per period, worked out with datetime, not the app."""
    local_now = datetime.fromtimestamp(at["now"], VENUE_TZ)
    today = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    starts = {"today": today, "week": today - timedelta(days=today.weekday()),
              "month": today.replace(day=1)}
    seeded = [(at["at0"], "completed", 20), (at["at1"], "completed", 80),
              (at["at2"], "failed", 0), (at["at3"], "pending", 0),
              (at["at4"], "completed", 80), (at["at5"], "completed", 400)]
    result = {}
    for label, start in starts.items():
        inside = [row for row in seeded if row[0] >= start.timestamp()]
        result[label] = (sum(r[2] for r in inside), len(inside),
                         sum(r[1] == "completed" for r in inside))
    return result


def test_dashboard_figures_against_a_seeded_database(appliance: Appliance, page: Any,
                                                     base: str) -> None:
    expected = expected_periods(seed(appliance))
    page.goto(base)
    for label, (revenue, purchases, completed) in expected.items():
        card = page.locator(f"#period-{label}")
        assert card.locator(".revenue").inner_text() == f"KES {revenue:,}"
        assert card.locator(".purchases").inner_text() == str(purchases)
        assert card.locator(".success").inner_text() == f"{round(100 * completed / purchases)}%"
    assert expected["today"] == (100, 4, 2)
    assert page.locator("#online").inner_text() == "2"
    assert page.locator("#waiting").inner_text() == "1"
    assert page.locator("#unmatched").inner_text() == "KES 20"
    revenue_bars = page.locator("svg.chart").nth(0).locator("rect.bar")
    assert revenue_bars.count() == 30
    assert revenue_bars.nth(29).get_attribute("data-value") == "100"
    hour_bars = page.locator("svg.chart").nth(1).locator("rect.bar")
    assert sum(int(hour_bars.nth(i).get_attribute("data-value")) for i in range(24)) == 4
    shot(page, "dashboard")


def paid_online(appliance: Appliance) -> str:
    """BUYER_MAC buys plan 1 (30 minutes) for 0708 374 149 through the portal API, and the
    router's login for it is done; the purchase's public id."""
    public_id = accepted(buy(appliance, "0708374149", BUYER_MAC))
    wait_until(lambda: appliance.db.query_one(
        "SELECT 1 FROM router_ops WHERE mac = ? AND state = 'done'", (BUYER_MAC,)),
        timeout=15, message="the router login")
    return public_id


def test_payment_story_of_a_portal_purchase(appliance: Appliance, page: Any, base: str) -> None:
    public_id = paid_online(appliance)
    page.goto(base + "payments?phone=0708+374+149")
    row = page.locator("#payments tr[data-id]")
    expect(row).to_have_count(1)
    assert "2547*****149" in row.inner_text() and "254708374149" not in page.content()
    shot(page, "payments")
    row.get_by_role("link", name="story").click()
    expect(page.locator("#status")).to_have_text("completed")
    kinds = page.locator("#story .kind").all_inner_texts()
    for kind in ("payment.created", "push.accepted", "payment.settled", "grant.created",
                 "router.login"):
        assert kind in kinds, kinds
    receipt = appliance.db.query_one("SELECT receipt FROM payments WHERE public_id = ?",
                                     (public_id,))[0]
    assert page.locator("#receipt").inner_text() == receipt
    assert "login" in page.locator("#router-ops").inner_text()
    assert "done" in page.locator("#router-ops").inner_text()
    assert page.locator("#requery").is_disabled()
    shot(page, "payment-story")


def test_check_with_mpesa_now_requeries_a_pending_payment(appliance: Appliance, page: Any,
                                                          base: str) -> None:
    accepted(buy(appliance, "254700000099", "AA:BB:CC:06:00:09"))  # never answers
    payment_id = appliance.db.query_one("SELECT id FROM payments ORDER BY id DESC")[0]
    wait_until(lambda: appliance.db.query_one("SELECT push_state FROM payments WHERE id = ?",
                                              (payment_id,))[0] == "sent", timeout=15,
               message="the push")
    before = appliance.db.query_one("SELECT query_count FROM payments WHERE id = ?",
                                    (payment_id,))[0]
    page.goto(f"{base}payments/{payment_id}")
    page.click("#requery")
    expect(page.locator("[role=status]")).to_contain_text("no final answer yet")
    after = appliance.db.query_one("SELECT query_count FROM payments WHERE id = ?",
                                   (payment_id,))[0]
    assert after > before


def active_macs(appliance: Appliance) -> set[str]:
    return {row["mac-address"] for row in appliance.router_simulator.active_hosts()}


def test_disconnect_is_reflected_on_the_router(appliance: Appliance, page: Any,
                                               base: str) -> None:
    paid_online(appliance)
    wait_until(lambda: BUYER_MAC in active_macs(appliance), timeout=15,
               message="the device online")
    page.goto(base + "devices")
    row = page.locator(f"#devices tr[data-mac='{BUYER_MAC}']")
    expect(row).to_have_count(1)
    shot(page, "devices")
    row.locator("button.disconnect").click()
    expect(page.locator("[role=status]")).to_contain_text("Disconnecting")
    wait_until(lambda: BUYER_MAC not in active_macs(appliance), timeout=15,
               message="the router to drop it")
    audit = appliance.db.query_one("SELECT username FROM admin_audit WHERE"
                                   " action = 'device.disconnect' AND target = ?", (BUYER_MAC,))
    assert audit["username"] == OWNER[0]


def test_give_free_time_and_block(appliance: Appliance, page: Any, base: str) -> None:
    with appliance.db.write() as conn:
        grant_time(conn, mac=BUYER_MAC, seconds=1800, now=appliance.now(), plan_id=1,
                   rate_limit=None, source="test")
    before = appliance.db.query_one("SELECT expires_at FROM entitlements WHERE mac = ?",
                                    (BUYER_MAC,))[0]
    page.goto(base + "devices")
    page.fill("input[aria-label=MAC]", BUYER_MAC.lower())
    page.fill("input[aria-label=Minutes]", "15")
    page.fill("input[aria-label=Reason]", "slow network yesterday")
    page.get_by_role("button", name="Give time").click()
    expect(page.locator("[role=status]")).to_contain_text("Gave 15 min")
    after = appliance.db.query_one("SELECT expires_at FROM entitlements WHERE mac = ?",
                                   (BUYER_MAC,))[0]
    assert abs(after - before - 900) < 1
    page.fill("input[aria-label='MAC to block']", "AA-BB-CC-06-00-66")
    page.fill("input[aria-label='Block reason']", "abuse")
    page.get_by_role("button", name="Block").click()
    expect(page.locator("#blocked")).to_contain_text("AA:BB:CC:06:00:66")
    assert appliance.db.query_one("SELECT reason FROM blocked_macs WHERE mac = ?",
                                  ("AA:BB:CC:06:00:66",))[0] == "abuse"


def test_assign_unmatched_money_to_a_device(appliance: Appliance, page: Any, base: str) -> None:
    mac = "AA:BB:CC:06:00:02"
    seed(appliance)
    page.goto(base + "unmatched")
    row = page.locator("#unmatched tr[data-receipt=UNMATCH01]")
    assert "2547*****999" in row.inner_text()
    shot(page, "unmatched")
    row.locator("input[name=mac]").fill(mac)
    row.locator("select[name=plan_id]").select_option(label="1 hour (KES 20)")
    row.get_by_role("button", name="Assign").click()
    expect(page.locator("[role=status]")).to_contain_text(f"Assigned: {mac}")
    expect(page.locator("#unmatched")).to_contain_text("Nothing waiting")
    grant = appliance.db.query_one("SELECT * FROM grants WHERE receipt = 'UNMATCH01'")
    assert (grant["mac"], grant["source"], grant["seconds"]) == (mac, "owner", 3600)
    assert appliance.db.query_one("SELECT resolved_at FROM unmatched_payments"
                                  " WHERE receipt = 'UNMATCH01'")[0] is not None


def test_plan_edit_never_alters_time_already_paid(appliance: Appliance, page: Any,
                                                  base: str) -> None:
    url = appliance.addresses["portal_url"]
    paid_online(appliance)
    paid = appliance.db.query_one("SELECT expires_at FROM entitlements WHERE mac = ?",
                                  (BUYER_MAC,))[0]
    page.goto(base + "plans")
    form = page.locator("#plans tr[data-plan='1'] form.edit")
    form.locator("input[name=price]").fill("15")
    form.locator("input[name=minutes]").fill("45")
    form.locator("input[name=data_cap_mb]").fill("500")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("[role=status]")).to_contain_text("Time already paid is unchanged")
    plan = next(p for p in requests.get(url + "api/plans", timeout=5).json() if p["id"] == 1)
    assert (plan["price"], plan["duration_seconds"]) == (15, 2700)
    assert appliance.db.query_one("SELECT data_cap_bytes FROM plans WHERE id = 1")[0] == 500_000_000
    assert appliance.db.query_one("SELECT expires_at FROM entitlements WHERE mac = ?",
                                  (BUYER_MAC,))[0] == paid
    assert appliance.db.query_one("SELECT seconds FROM grants WHERE mac = ? AND source = 'stk'",
                                  (BUYER_MAC,))[0] == 1800
    page.locator("#plans tr[data-plan='4']").get_by_role("button", name="Hide").click()
    assert 4 not in [p["id"] for p in requests.get(url + "api/plans", timeout=5).json()]
    page.locator("#plans tr[data-plan='3']").get_by_role("button", name="Move up").click()
    order = [p["id"] for p in requests.get(url + "api/plans", timeout=5).json()]
    assert order.index(3) < order.index(2)
    shot(page, "plans")


def test_voucher_batch_print_and_redeem_on_the_portal(appliance: Appliance, page: Any,
                                                      browser: Any, base: str) -> None:
    page.goto(base + "vouchers")
    form = page.locator("#new-batch")
    form.locator("input[name=count]").fill("6")
    form.locator("select[name=plan_id]").select_option(value="2")
    form.get_by_role("button", name="Generate").click()
    codes = page.locator("#codes td.code").all_inner_texts()
    assert len(codes) == 6 and all(re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", c) for c in codes)
    page.click("#print-link")
    expect(page.locator(".voucher")).to_have_count(6)
    sheet = page.locator(".sheet").evaluate("element => getComputedStyle(element).display")
    assert sheet == "grid"  # the print style sheet applies (no inline style under the CSP)
    assert appliance.config.venue.name in page.locator(".voucher").first.inner_text()
    shot(page, "voucher-print")
    phone = browser.new_context(viewport={"width": 360, "height": 640})
    portal = phone.new_page()
    appliance.router_simulator.add_host("AA:BB:CC:06:00:03", "127.0.0.1")  # the browser
    portal.goto(appliance.addresses["portal_url"] + "?mac=AA:BB:CC:06:00:03&ip=127.0.0.1")
    portal.click("#voucher summary")
    portal.fill("#code", codes[0].lower())
    portal.locator("#voucher button[type=submit]").click()
    wait_until(lambda: appliance.db.query_one("SELECT status FROM vouchers WHERE code = ?",
                                              (codes[0].replace("-", ""),))[0] == "used",
               timeout=15, message="the voucher to be used")
    phone.close()
    page.go_back()
    page.reload()
    used = page.locator(f"#codes tr[data-code='{codes[0].replace('-', '')}'] .vstatus")
    expect(used).to_have_text("used")
    page.get_by_role("button", name=re.compile("Void selected")).click()
    expect(page.locator("[role=status]")).to_contain_text("5 voucher(s) voided")
    shot(page, "voucher-batch")


def test_csv_export_contents(appliance: Appliance, page: Any, base: str) -> None:
    seed(appliance)
    paid_online(appliance)
    today = datetime.now(VENUE_TZ).strftime("%Y-%m-%d")
    response = page.request.get(f"{base}exports/payments.csv?from={today}&to={today}")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert f"payments-{today}-{today}.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text())))
    mine = [r for r in rows if r["mac"] == BUYER_MAC]
    assert len(mine) == 1 and mine[0]["status"] == "completed"
    assert (mine[0]["amount"], mine[0]["phone"], mine[0]["plan"]) == ("10", "2547*****149",
                                                                       "30 minutes")
    assert mine[0]["receipt"] and "254708374149" not in response.text()
    seeded_today = [r for r in rows if r["receipt"].startswith("SEED")]
    assert sorted(r["receipt"] for r in seeded_today) == ["SEED000000", "SEED000001"]
    sessions = page.request.get(f"{base}exports/sessions.csv?from={today}")
    table = list(csv.DictReader(io.StringIO(sessions.text())))
    assert {"AA:BB:CC:06:02:00", "AA:BB:CC:06:02:01"} <= {r["mac"] for r in table}


def test_screens_for_the_record(page: Any, base: str) -> None:
    page.goto(base + "devices")  # something for the audit screen to show
    page.fill("input[aria-label='MAC to block']", "AA-BB-CC-06-00-66")
    page.fill("input[aria-label='Block reason']", "abuse")
    page.get_by_role("button", name="Block").click()
    expect(page.locator("#blocked")).to_contain_text("AA:BB:CC:06:00:66")
    for path, name in (("exports", "exports"), ("settings", "settings"),
                       ("settings/self-test", "self-test"), ("audit", "audit")):
        page.goto(base + path)
        assert page.locator("h1").count() == 1
        shot(page, name)
        if name == "self-test":
            names = page.locator("#checks td:first-child").all_inner_texts()
            for check in ("database", "disk space", "daraja", "router", "clock"):
                assert check in names, names
    assert "device.block" in page.locator("#audit").inner_text()
    page.set_viewport_size({"width": 390, "height": 844})  # the owner's phone
    page.goto(base)
    shot(page, "dashboard-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    page.set_viewport_size({"width": 1200, "height": 900})
