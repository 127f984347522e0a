"""Settings editing in headless Chromium against the demo appliance: the venue name changed
by the owner shows on the captive portal; a bad value is refused with a message on the form;
a Daraja channel's secrets never come back in a page; a cashier sees no way to edit.
Screenshots go to bench/results/admin/ beside the other screens."""

from __future__ import annotations

import re
from typing import Any

import pytest
from support.admin_http import add_owner_and_cashier
from test_admin_browser import base, browser, page, shot

from hotspotd.app import Appliance

expect = pytest.importorskip("playwright.sync_api").expect

__all__ = ["base", "browser", "page"]  # test_admin_browser's fixtures (Chromium, owner tab)
SECRETS = {"consumer_key": "ck-browser-secret-81", "consumer_secret": "cs-browser-secret-82",
           "passkey": "pk-browser-secret-83"}


def test_venue_name_edit_shows_on_the_portal(appliance: Appliance, page: Any, base: str,
                                             browser: Any) -> None:
    page.goto(base + "settings")
    page.fill("#venue__name", "Baraka Hostel")
    page.fill("#venue__portal_text", "Reception is open 24 hours.")
    page.click("#save-venue")
    expect(page.locator("[role=status]")).to_contain_text("Saved: Venue name, Portal text")
    expect(page.locator("header strong")).to_have_text("Baraka Hostel")
    shot(page, "settings-edit")
    phone = browser.new_context(viewport={"width": 360, "height": 640})
    portal = phone.new_page()
    appliance.router_simulator.add_host("AA:BB:CC:0B:00:01", "127.0.0.1")  # the browser
    portal.goto(appliance.addresses["portal_url"] + "?mac=AA:BB:CC:0B:00:01&ip=127.0.0.1")
    expect(portal.locator("header h1")).to_have_text("Baraka Hostel")
    expect(portal.locator("#portal-text")).to_have_text("Reception is open 24 hours.")
    phone.close()


def test_a_bad_limit_is_refused_on_the_form(appliance: Appliance, page: Any, base: str) -> None:
    page.goto(base + "settings")
    before = page.input_value("#limits__push_per_phone")
    page.fill("#limits__push_per_device", "0")
    page.fill("#limits__push_per_phone", "99")
    page.click("#save-limits")
    error = page.locator("#limits-error")
    expect(error).to_contain_text("Nothing was changed.")
    expect(error).to_contain_text("Pushes per device per window: expected a positive integer")
    assert page.input_value("#limits__push_per_device") == "0"  # what was typed stays
    shot(page, "settings-error")
    assert appliance.settings.config().limits.push_per_phone == int(before)
    assert appliance.db.query_one("SELECT 1 FROM settings WHERE key LIKE 'limits.%'") is None


def test_channel_secrets_are_write_only(appliance: Appliance, page: Any, base: str) -> None:
    page.goto(base + "settings")
    form = page.locator("#channel-form")
    form.locator("#ch-name").fill("upstairs")
    form.locator("#ch-kind").select_option("paybill")
    form.locator("#ch-shortcode").fill("600100")
    for name, value in SECRETS.items():
        form.locator(f"#ch-{name}").fill(value)
    form.locator("#save-channel").click()
    expect(page.locator("[role=status]")).to_contain_text("Channel 'upstairs' added")
    expect(page.locator("#channel-list")).to_contain_text("upstairs")
    page.get_by_role("link", name="Edit").first.click()
    assert page.input_value("#ch-shortcode") == "600100"
    for name in SECRETS:
        assert page.input_value(f"#ch-{name}") == ""
    shot(page, "settings-channel")
    html = page.content()
    page.goto(base + "audit")
    html += page.content()
    for secret in SECRETS.values():
        assert secret not in html


def test_cashier_sees_settings_but_cannot_edit(browser: Any, base: str,
                                               appliance: Appliance) -> None:
    add_owner_and_cashier(appliance.db, cashier=("lockme", "lockme password 1"))
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    tab = context.new_page()
    tab.goto(base + "login")
    tab.fill("#username", "lockme")
    tab.fill("#password", "lockme password 1")
    tab.click("button[type=submit]")
    expect(tab.locator("h1")).to_have_text("Dashboard")
    tab.goto(base + "settings")
    assert tab.locator("#save-venue").count() == 0 and tab.locator("#channel-form").count() == 0
    assert tab.locator("#venue__name").is_disabled()
    assert re.search(r"cashier account can only look", tab.content())
    context.close()



def test_self_test_shows_missing_product_access_in_plain_words(
        appliance: Appliance, page: Any, base: str) -> None:
    faults = appliance.daraja_simulator.faults
    faults.update(token_lifetime=0.000001)  # OAuth works; every API call: 404.001.03
    try:
        page.goto(base + "settings/self-test")
    finally:
        faults.reset()
    row = page.locator("#checks tr", has_text="Daraja product access")
    expect(row).to_contain_text("PROBLEM: OAuth works, but STK Query answered HTTP 404")
    expect(row).to_contain_text("add the M-Pesa Express (Lipa na M-Pesa Online) product")
    radius = page.locator("#checks tr", has_text="RADIUS from the router")
    expect(radius).to_contain_text("Access-Request")
    shot(page, "self-test-product-access")
