"""The captive portal in headless Chromium (Debian's package) at 360×640, against the whole
demo appliance on real sockets: buy end to end (approved on the simulator's phone page),
cancelled and wrong-PIN purchases, Swahili, the no-JavaScript path, top-up, voucher and
recovery. Screenshots of the key states go to bench/results/portal/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from support.browser import launched_chromium
from support.mpesa import callback_root
from support.phones import phone_for
from support.wait import wait_until

from hotspotd.app import Appliance
from hotspotd.ledger.vouchers import create_batch
from hotspotd.router.durations import parse_duration as seconds

SHOTS = Path(__file__).resolve().parents[1] / "bench" / "results" / "portal"
ORIGINAL = "http://example.com/news"
TIMEOUT_MS = 15_000

@pytest.fixture
def appliance_config() -> dict[str, dict[str, Any]]:
    # host_cache_seconds 0: the browser's one address changes hands between devices
    # within a test, and pages must follow the router's table at once.
    return {"web": {"host_cache_seconds": 0.0}}


# Module scope, on purpose: Chromium takes about a second to start. Each test opens its own
# browser contexts (own cookies) on its own appliance, so nothing else is shared.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as chromium:
        yield chromium


@pytest.fixture()
def new_page(browser: Any, appliance: Appliance) -> Iterator[Any]:
    """`new_page(locale=..., javascript=...)`: a 360×640 phone whose requests to other hosts
    are recorded and answered by a fake "internet" page (never the real network)."""
    contexts: list[Any] = []

    def make(*, locale: str = "en-US", javascript: bool = True) -> Any:
        context = browser.new_context(viewport={"width": 360, "height": 640},
                                      locale=locale, java_script_enabled=javascript)
        context.set_default_timeout(TIMEOUT_MS)
        context.foreign_requests = []
        appliance_host = urlsplit(appliance.addresses["portal_url"]).netloc

        def route(route: Any) -> None:
            if urlsplit(route.request.url).netloc == appliance_host:
                route.continue_()
                return
            context.foreign_requests.append(route.request.url)
            route.fulfill(status=200, content_type="text/html",
                          body="<h1>The internet</h1>")

        context.route("**/*", route)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


BROWSER_ADDRESS = "127.0.0.1"  # where Chromium's requests to the portal come from


def portal_address(appliance: Appliance, mac: str, **extra: str) -> str:
    """The browser becomes the device `mac`: the router's host table lists it at the
    browser's address (as when a phone's MAC changes, or the address's lease passes to
    another device), and the router's redirect carries the matching hints."""
    appliance.router_simulator.add_host(mac, BROWSER_ADDRESS)
    query = {"mac": mac, "ip": BROWSER_ADDRESS, "link-orig": ORIGINAL, **extra}
    return appliance.addresses["portal_url"] + "?" + urlencode(query)


def seconds_left(appliance: Appliance, mac: str) -> int:
    """What the device `mac` itself reads as its time left (from its own address)."""
    url = appliance.addresses["portal_url"] + "api/device"
    return int(phone_for(appliance, mac).get(url, timeout=5).json()["seconds_remaining"])


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def pay(page: Any, phone: str, plan: int = 0) -> None:
    page.locator("input[name=plan_id]").nth(plan).check()
    page.fill("#phone", phone)
    page.click("#buy button[type=submit]")


def approve_on_phone(page: Any, appliance: Appliance, msisdn: str, outcome: str = "Approve",
                     ) -> None:
    """Open the simulator's phone page (another "phone", its own context) and answer."""
    phone = page.context.browser.new_page(viewport={"width": 360, "height": 640})
    phone.goto(appliance.addresses["phone_url"])
    card = phone.locator(".card", has_text=msisdn).filter(has=phone.locator("form"))
    card.get_by_role("button", name=outcome).click(timeout=TIMEOUT_MS)
    phone.close()


def test_first_view_is_local_small_and_phone_shaped(appliance: Appliance,
                                                    new_page: Any) -> None:
    page = new_page()
    sizes: list[int] = []
    page.on("requestfinished", lambda request: sizes.append(
        request.sizes()["responseBodySize"] + request.sizes()["responseHeadersSize"]))
    page.goto(portal_address(appliance, "AA:BB:CC:05:00:01"))
    page.wait_for_load_state("load")
    for _ in range(50):  # "requestfinished" events may trail the load event on a busy machine
        if sizes:
            break
        page.wait_for_timeout(100)
    page.wait_for_timeout(300)
    assert page.context.foreign_requests == []
    assert 0 < sum(sizes) < 30_000, sizes
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    pay_button = page.locator("#buy button[type=submit]").bounding_box()
    assert pay_button and pay_button["height"] >= 44
    assert "KES 20 · 1 hour" in page.inner_text("#buy")
    shot(page, "01-plans-en")


def test_buy_end_to_end_goes_online_and_on_to_the_original_page(
        appliance: Appliance, new_page: Any) -> None:
    page = new_page()
    page.goto(portal_address(appliance, "AA:BB:CC:05:00:02"))
    page.fill("#phone", "0711 000 1")
    assert "bad" not in (page.get_attribute("#phone", "class") or "")
    page.fill("#phone", "0711 000 102")
    assert "0711 000 102" in page.inner_text("#phone-hint")
    pay(page, "0711 000 102", plan=1)
    page.wait_for_selector("text=Check your phone")
    shot(page, "02-check-your-phone")
    approve_on_phone(page, appliance, "254711000102")
    page.wait_for_selector("#title:has-text('Connected')")
    assert "1 hour" in page.inner_text("#status")
    assert re.search(r"M-Pesa receipt \w+", page.inner_text("#status"))
    shot(page, "03-connected")
    page.wait_for_url(ORIGINAL)
    assert appliance.router_simulator.session_timeout_of("AA:BB:CC:05:00:02") > 3500
    again = new_page()
    again.goto(portal_address(appliance, "AA:BB:CC:05:00:03"))
    assert again.input_value("#phone") == "", "the number is remembered per device only"
    page.goto(portal_address(appliance, "AA:BB:CC:05:00:02"))
    assert page.input_value("#phone") == "0711 000 102", "remembered on this device"


@pytest.mark.parametrize(("phone", "words", "name"), [
    ("0700 000 032", "cancelled", "04-cancelled"),
    ("0700 000 020", "PIN", "05-wrong-pin"),
])
def test_refused_purchases_say_why_and_what_next(appliance: Appliance, new_page: Any,
                                                 phone: str, words: str, name: str) -> None:
    page = new_page()
    page.goto(portal_address(appliance, "AA:BB:CC:05:00:04"))
    pay(page, phone)
    page.wait_for_selector("#message.error")
    assert words in page.inner_text("#message")
    assert page.locator("#next-steps a", has_text="Try again").is_visible()
    assert not page.locator("#continue").is_visible()
    shot(page, name)


def test_swahili_from_the_browser_and_the_switch(appliance: Appliance, new_page: Any) -> None:
    page = new_page(locale="sw-KE")
    page.goto(portal_address(appliance, "AA:BB:CC:05:00:05"))
    text = page.inner_text("main")
    assert "Lipa kwa M-Pesa" in text and "KES 20 · saa 1" in text
    assert page.get_attribute("html", "lang") == "sw"
    shot(page, "06-plans-sw")
    page.click("a.lang")
    assert "Pay with M-Pesa" in page.inner_text("main")
    page.goto(portal_address(appliance, "AA:BB:CC:05:00:05"))
    assert "Pay with M-Pesa" in page.inner_text("main"), "the choice is remembered"


def test_no_javascript_path_buys(appliance: Appliance, new_page: Any) -> None:
    page = new_page(javascript=False)
    page.goto(portal_address(appliance, "AA:BB:CC:05:00:06"))
    pay(page, "0711 000 106")
    page.wait_for_selector("text=Check your phone")
    checkout = appliance.db.query_one(
        "SELECT checkout_request_id FROM payments WHERE mac = ? ORDER BY id DESC LIMIT 1",
        ("AA:BB:CC:05:00:06",))[0]
    appliance.daraja_simulator.resolve(checkout, "approve")
    page.wait_for_selector("#title:has-text('Connected')", timeout=20_000)
    shot(page, "07-connected-no-js")
    assert page.locator("#continue").get_attribute("href") == ORIGINAL


def test_top_up_while_online(appliance: Appliance, new_page: Any) -> None:
    mac = "AA:BB:CC:05:00:07"
    page = new_page()
    page.goto(portal_address(appliance, mac))
    pay(page, "0700 000 000", plan=0)
    page.wait_for_selector("#title:has-text('Connected')")
    page.goto(portal_address(appliance, mac))
    assert "You have 30 min left." in page.inner_text("#left")
    assert "Top up" in page.inner_text("#buy h2")
    shot(page, "08-top-up")
    before = wait_for_host(appliance, mac)
    pay(page, "0700 000 000", plan=1)
    page.wait_for_selector("#title:has-text('Connected')")
    assert "1 hour 30 min" in page.inner_text("#left")
    # Extended by CoA on the live session: the router kept the same session, no disconnect.
    after = wait_for_host(appliance, mac, lambda row: seconds(row["session-time-left"]) > 3600)
    assert after[".id"] == before[".id"]
    assert abs(seconds(after["session-time-left"]) - 5400) <= 10


def wait_for_host(appliance: Appliance, mac: str, ok: Any = lambda row: True,
                  timeout: float = 10) -> dict[str, str]:
    return wait_until(lambda: next((row for row in appliance.router_simulator.active_hosts()
                                    if row["mac-address"] == mac and ok(row)), None),
                      timeout=timeout, message=f"{mac} as expected among the active hosts")


def test_voucher_grants_once(appliance: Appliance, new_page: Any) -> None:
    _, vouchers = create_batch(appliance.db, plan_id=2, count=1, now=appliance.now())
    code = vouchers[0].code
    page = new_page()
    page.goto(portal_address(appliance, "AA:BB:CC:05:00:08"))
    page.click("#voucher summary")
    page.fill("#code", f"{code[:4]}-{code[4:].lower()}")
    page.click("#voucher button")
    page.wait_for_load_state("load")
    page.wait_for_selector("text=Voucher accepted")
    assert "1 hour" in page.inner_text("#done")
    shot(page, "09-voucher")
    page.goto(portal_address(appliance, "AA:BB:CC:05:00:09"))
    page.click("#voucher summary")
    page.fill("#code", code)
    page.click("#voucher button")
    page.wait_for_selector("#error")
    assert "already been used" in page.inner_text("#error")


def test_recovery_moves_the_time_to_the_new_mac(appliance: Appliance, new_page: Any) -> None:
    old_mac, new_mac = "AA:BB:CC:05:00:0A", "AA:BB:CC:05:00:0B"
    page = new_page()
    page.goto(portal_address(appliance, old_mac))
    pay(page, "0700 000 000", plan=2)
    page.wait_for_selector("#title:has-text('Connected')")
    receipt = page.inner_text("#receipt")
    page.goto(portal_address(appliance, new_mac))
    page.click("#recover summary")
    page.fill("#receipt", receipt.lower())
    page.fill("#rphone", "0700000000")
    page.click("#recover button")
    page.wait_for_selector("text=moved to this device")
    shot(page, "10-recovered")
    assert 86_000 < seconds_left(appliance, new_mac) <= 86_400
    assert seconds_left(appliance, old_mac) == 0


def test_pay_from_the_mpesa_menu_page_notices_by_itself(appliance: Appliance,
                                                        new_page: Any) -> None:
    mac = "AA:BB:CC:05:00:0C"
    page = new_page()
    page.goto(portal_address(appliance, mac, open="menu"))
    code = page.inner_text("#account-code")
    assert code and page.locator("#menu").get_attribute("open") is not None
    shot(page, "11-pay-from-menu")
    # The customer pays KES 20 (the 1-hour plan) to the paybill from the M-Pesa menu with
    # that account code: the simulator runs C2B validation then confirmation to the daemon.
    daraja = appliance.mpesa.purchases._daraja  # noqa: SLF001 - the appliance's own client
    root = callback_root(appliance)
    daraja.register_c2b_urls(confirmation_url=root + "/c2b/confirmation",
                             validation_url=root + "/c2b/validation")
    daraja.simulate_c2b(amount=20, msisdn="0711222333", bill_ref=code)
    page.wait_for_selector("#left")
    assert "1 hour" in page.inner_text("#left")
