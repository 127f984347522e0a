"""Settings edited in the owner UI, over real HTTP: stored in SQLite over the config file,
checked by the config schema (a bad value changes nothing and says why), applied without a
restart (venue name and portal text on the portal, push limits, router reconnect), secrets
encrypted at rest and never echoed, audited with secrets redacted, cashiers refused."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests
from support.admin_http import (
    CASHIER,
    OWNER,
    add_account,
    add_owner_and_cashier,
    csrf_of,
    owner_session,
)
from support.appliance import running_appliance
from support.phones import phone_for
from support.wait import wait_until

from hotspotd.admin.settings_store import SettingsRefused, SettingsStore
from hotspotd.app import Appliance
from hotspotd.commands.demo import demo_config
from hotspotd.mpesa.push_limits import PushLimited
from hotspotd.router.gateway import RouterLoginFailed
from hotspotd.simulators.mikrotik import MikrotikSimulator
from hotspotd.store.db import Database

CHANNEL_SECRETS = {"consumer_key": "CK-never-shown-4711", "consumer_secret": "CS-never-shown-0815",
                   "passkey": "PK-never-shown-2026"}


@pytest.fixture
def base(portal: str) -> str:
    return portal + "admin/"


def post_settings(session: requests.Session, base: str, path: str,
                  data: dict[str, str]) -> requests.Response:
    token = csrf_of(session.get(base + "settings", timeout=5).text)
    return session.post(base + path, data={**data, "csrf_token": token}, timeout=10)


VENUE_FORM = {"venue__name": "Mama Njeri's Cafe", "venue__portal_text": "Open 7am-10pm."}
LIMITS_FORM = {"limits__push_per_device": "5", "limits__push_per_phone": "5",
               "limits__push_window_seconds": "900", "limits__cancel_limit": "3",
               "limits__cancel_cooldown_seconds": "600", "daraja__requests_per_minute": "100"}


def test_venue_name_and_portal_text_show_on_the_portal_at_once(
        appliance: Appliance, base: str, owner: requests.Session, portal: str) -> None:
    assert "Mama Njeri" not in requests.get(portal, timeout=5).text
    saved = post_settings(owner, base, "settings/edit/venue", VENUE_FORM)
    assert saved.status_code == 200 and "Saved: Venue name, Portal text" in saved.text
    page = phone_for(appliance, "AA:BB:CC:0A:00:01").get(portal, timeout=5).text
    assert "Mama Njeri&#39;s Cafe" in page and "Open 7am-10pm." in page
    row = appliance.db.query_one("SELECT value, secret, updated_by FROM settings"
                                 " WHERE key = 'venue.name'")
    assert json.loads(row["value"]) == "Mama Njeri's Cafe" and row["updated_by"] == OWNER[0]
    audit = appliance.db.query_one("SELECT * FROM admin_audit WHERE action = 'settings.venue'"
                                   " ORDER BY id DESC")
    assert json.loads(audit["before"])["venue.name"] == appliance.settings.base.venue.name
    assert json.loads(audit["after"])["venue.name"] == "Mama Njeri's Cafe"


def test_a_bad_value_is_refused_with_a_message_and_changes_nothing(
        appliance: Appliance, base: str, owner: requests.Session) -> None:
    before = appliance.db.query("SELECT * FROM settings ORDER BY key")
    audits = appliance.db.query_one("SELECT COUNT(*) FROM admin_audit")[0]
    refused = post_settings(owner, base, "settings/edit/limits", {
        **LIMITS_FORM, "limits__push_per_device": "0", "limits__push_per_phone": "three"})
    assert refused.status_code == 400
    assert "Nothing was changed" in refused.text
    assert "Pushes per device per window: expected a positive integer, got 0." in refused.text
    assert "Pushes per phone per window: expected a whole number, got &#39;three&#39;" \
        in refused.text
    empty_name = post_settings(owner, base, "settings/edit/venue",
                               {"venue__name": "  ", "venue__portal_text": ""})
    assert empty_name.status_code == 400 and "Venue name: expected a non-empty string" \
        in empty_name.text
    too_long = post_settings(owner, base, "settings/edit/venue",
                             {"venue__name": "Cafe", "venue__portal_text": "x" * 501})
    assert too_long.status_code == 400 and "at most 500 characters" in too_long.text
    long_name = post_settings(owner, base, "settings/edit/venue",
                              {"venue__name": "C" * 61, "venue__portal_text": ""})
    assert long_name.status_code == 400 and "at most 60 characters" in long_name.text
    assert [tuple(r) for r in appliance.db.query("SELECT * FROM settings ORDER BY key")] == \
        [tuple(r) for r in before]
    assert appliance.db.query_one("SELECT COUNT(*) FROM admin_audit")[0] == audits


def test_push_limits_apply_from_the_next_prompt(appliance: Appliance, base: str,
                                                owner: requests.Session) -> None:
    guard = appliance.purchases._guard
    assert guard is not None and guard.limits.per_device == 5
    saved = post_settings(owner, base, "settings/edit/limits",
                          {**LIMITS_FORM, "limits__push_per_device": "1"})
    assert saved.status_code == 200
    assert guard.limits.per_device == 1 and guard.limits.window == 900.0
    assert guard.check(mac="AA:BB:CC:0A:00:02", phone="254711000111") is None
    unpaid = appliance.purchases.start_purchase(  # the limits count stored purchases
        plan_id=1, phone="254700000001", mac="AA:BB:CC:0A:00:02", ip=None)  # balance too low
    wait_until(lambda: appliance.db.query_one("SELECT status FROM payments WHERE id = ?",
                                              (unpaid.id,))["status"] == "failed",
               timeout=30, message="the unpaid purchase ends")
    with pytest.raises(PushLimited) as refused:
        guard.check(mac="AA:BB:CC:0A:00:02", phone="254711000222")
    assert refused.value.reason == "device"


def test_daraja_rate_applies_to_the_budget_and_the_wait_estimate_at_once(
        appliance: Appliance, base: str, owner: requests.Session) -> None:
    form = {**LIMITS_FORM, "daraja__requests_per_minute": "30"}
    try:
        saved = post_settings(owner, base, "settings/edit/limits", form)
        assert saved.status_code == 200 and "Daraja requests per minute" in saved.text
        assert appliance.daraja.budget.interval == 2.0
        assert appliance.portal_options.seconds_per_place == 4.0  # a push + a query a place
        zero = post_settings(owner, base, "settings/edit/limits",
                             {**form, "daraja__requests_per_minute": "0"})
        assert zero.status_code == 400 and "expected a positive integer" in zero.text
        assert appliance.daraja.budget.interval == 2.0  # refused: nothing changed
    finally:
        post_settings(owner, base, "settings/edit/limits",
                      {**form, "daraja__requests_per_minute": "100"})
    assert appliance.daraja.budget.interval == 0.6
    assert appliance.portal_options.seconds_per_place == 1.2


def test_router_password_is_encrypted_redacted_and_needs_a_restart_on_the_simulator(
        appliance: Appliance, base: str, owner: requests.Session) -> None:
    form = {"router__host": "192.168.88.1", "router__api_port": "8729",
            "router__user": "hotspotd", "router__password": "router-pw-never-shown-77",
            "router__use_tls": "1", "router__coa_port": "3799"}
    saved = post_settings(owner, base, "settings/edit/router", form)
    assert saved.status_code == 200 and "router-pw-never-shown-77" not in saved.text
    assert 'id="restart-needed"' in saved.text and "router.password" in saved.text
    row = appliance.db.query_one("SELECT value, secret FROM settings"
                                 " WHERE key = 'router.password'")
    assert row["secret"] == 1 and row["value"].startswith("v1:")
    assert "router-pw-never-shown-77" not in row["value"]
    assert appliance.settings.config().router.password == "router-pw-never-shown-77"
    audit = appliance.db.query_one("SELECT before, after FROM admin_audit"
                                   " WHERE action = 'settings.router' ORDER BY id DESC")
    assert "router-pw-never-shown-77" not in audit["after"] + audit["before"]
    assert json.loads(audit["after"])["router.password"] == "*** (changed)"
    # an empty password field keeps the stored one
    again = post_settings(owner, base, "settings/edit/router",
                          {**form, "router__password": "", "router__api_port": "8728"})
    assert again.status_code == 200
    assert appliance.settings.config().router.password == "router-pw-never-shown-77"
    assert appliance.settings.config().router.api_port == 8728


def test_a_channel_secret_is_never_echoed(appliance: Appliance, base: str,
                                          owner: requests.Session) -> None:
    form = {"name": "branch-2", "kind": "till", "environment": "sandbox", "base_url": "",
            "shortcode": "600999", "till_number": "5566778", **CHANNEL_SECRETS}
    missing = post_settings(owner, base, "settings/channels",
                            {**form, "name": "branch-3", "passkey": ""})
    assert missing.status_code == 400 and "A new channel needs its passkey." in missing.text
    bad_till = post_settings(owner, base, "settings/channels", {**form, "till_number": "x1"})
    assert bad_till.status_code == 400 and "Till number: expected a string of digits" \
        in bad_till.text
    bodies = [missing.text, bad_till.text]
    saved = post_settings(owner, base, "settings/channels", form)
    assert saved.status_code == 200 and "Channel &#39;branch-2&#39; added" in saved.text
    bodies += [saved.text, owner.get(base + "settings", params={"channel": "branch-2"},
                                     timeout=5).text]
    edited = post_settings(owner, base, "settings/channels", {
        **form, "shortcode": "600111", "consumer_key": "", "consumer_secret": "",
        "passkey": ""})  # empty secret fields keep the stored ones
    bodies += [edited.text, owner.get(base + "audit", timeout=5).text]
    for body in bodies:
        for secret in CHANNEL_SECRETS.values():
            assert secret not in body
    assert 'value="600111"' in owner.get(base + "settings", params={"channel": "branch-2"},
                                         timeout=5).text
    box = appliance.settings.box()
    from hotspotd.mpesa.channels import load_channels

    stored = {c.name: c for c in load_channels(appliance.db, box)}["branch-2"]
    assert (stored.consumer_key, stored.consumer_secret, stored.passkey) == \
        tuple(CHANNEL_SECRETS.values())
    assert stored.shortcode == "600111" and stored.environment == "sandbox"
    raw = appliance.db.query_one("SELECT * FROM daraja_channels WHERE name = 'branch-2'")
    for secret in CHANNEL_SECRETS.values():
        assert secret not in " ".join(str(value) for value in tuple(raw))
    # the new channel's secret callback path works without a restart
    assert appliance.mpesa.callbacks.channel_tokens[stored.callback_token] == "branch-2"
    audit = appliance.db.query("SELECT action, after FROM admin_audit"
                               " WHERE target = 'branch-2' ORDER BY id")
    assert [row["action"] for row in audit] == ["channel.create", "channel.update"]
    assert json.loads(audit[1]["after"])["passkey"] == "***"


def test_cashier_cannot_edit_settings(appliance: Appliance, base: str) -> None:
    add_owner_and_cashier(appliance.db)  # the owner UI asks for set-up until an owner exists
    cashier = owner_session(base, *CASHIER)
    page = cashier.get(base + "settings", timeout=5)
    assert page.status_code == 200 and 'id="save-venue"' not in page.text
    assert 'id="channel-form"' not in page.text
    token = csrf_of(page.text)
    before = [tuple(r) for r in appliance.db.query("SELECT * FROM settings ORDER BY key")]
    for path, data in (("settings/edit/venue", {"venue__name": "Cashier Cafe"}),
                       ("settings/edit/limits", {"limits__push_per_device": "50"}),
                       ("settings/channels", {"name": "cash", **CHANNEL_SECRETS})):
        refused = cashier.post(base + path, data={**data, "csrf_token": token}, timeout=5)
        assert refused.status_code == 403, path
    assert [tuple(r) for r in appliance.db.query("SELECT * FROM settings ORDER BY key")] == \
        before
    assert appliance.db.query_one("SELECT 1 FROM daraja_channels WHERE name = 'cash'") is None


def test_stored_settings_override_the_file_after_a_restart(tmp_path: Path) -> None:
    config = demo_config(tmp_path, "127.0.0.1", 0)
    db = Database(tmp_path / "hotspotd.sqlite3").open()
    store = SettingsStore(db, config, key_file=Path(config.security.key_file))
    store.save("venue", {"venue__name": "Kibanda"}, username=OWNER[0], now=1.0)
    with pytest.raises(SettingsRefused):
        store.save("router", {"router__host": "", "router__api_port": "99999",
                              "router__user": "x", "router__coa_port": "1"},
                   username=OWNER[0], now=2.0)
    db.close()
    reopened = Database(tmp_path / "hotspotd.sqlite3").open()
    again = SettingsStore(reopened, config, key_file=Path(config.security.key_file))
    assert again.config().venue.name == "Kibanda"
    assert again.config().router.api_port == config.router.api_port
    reopened.close()


def test_router_connection_change_reconnects_a_real_router(tmp_path: Path) -> None:
    """backend = "routeros" (the simulator standing in for a real router on its own port):
    a wrong password in the file, fixed in Settings, works without a restart."""
    sim = MikrotikSimulator(api_user="hotspotd", api_password="right-router-pw",
                            radius_host="127.0.0.1", radius_auth_port=9, radius_acct_port=9,
                            radius_secret="s")
    sim.start("127.0.0.1", 0)
    host, port = sim.api_address
    try:
        with running_appliance(tmp_path, router={
                "backend": "routeros", "host": host, "api_port": port, "user": "hotspotd",
                "password": "wrong-router-pw", "reconcile_interval_seconds": 3600},
                radius={"secret": "radius-secret-1", "mac_password": "mac-pw-1"}) as running:
            add_account(running.db, OWNER)
            with pytest.raises(RouterLoginFailed):
                running.router_gateway.version()
            base = running.addresses["portal_url"] + "admin/"
            owner = owner_session(base)
            saved = post_settings(owner, base, "settings/edit/router", {
                "router__host": host, "router__api_port": str(port),
                "router__user": "hotspotd", "router__password": "right-router-pw",
                "router__coa_port": "3799"})
            assert saved.status_code == 200 and "reconnects" in saved.text
            assert 'id="restart-needed"' not in saved.text
            assert running.router_gateway.version()
            assert "right-router-pw" not in saved.text
    finally:
        sim.stop()


def test_settings_forms_need_the_csrf_token(appliance: Appliance, base: str,
                                            owner: requests.Session) -> None:
    before = [tuple(r) for r in appliance.db.query("SELECT * FROM settings ORDER BY key")]
    for path, data in (("settings/edit/venue", {"venue__name": "No Token Cafe"}),
                       ("settings/channels", {"name": "notoken", **CHANNEL_SECRETS})):
        assert owner.post(base + path, data=data, timeout=5).status_code == 403
        assert owner.post(base + path, data={**data, "csrf_token": "forged"},
                          timeout=5).status_code == 403
    assert [tuple(r) for r in appliance.db.query("SELECT * FROM settings ORDER BY key")] == \
        before
    assert appliance.db.query_one("SELECT 1 FROM daraja_channels WHERE name = 'notoken'") is None


def test_a_restarted_appliance_starts_with_the_stored_settings(tmp_path: Path) -> None:
    with running_appliance(tmp_path) as first:
        first.settings.save("venue", {"venue__name": "Stage 42", "venue__portal_text": ""},
                            username=OWNER[0], now=time.time())
        first.settings.save("limits", {
            **LIMITS_FORM, "limits__push_per_phone": "3",
            "daraja__requests_per_minute": "30"}, username=OWNER[0], now=time.time())
    with running_appliance(tmp_path) as second:
        assert second.config.venue.name == "Stage 42"
        assert second.config.limits.push_per_phone == 3
        assert second.daraja.budget.interval == 2.0  # 30 requests a minute
        assert "Stage 42" in phone_for(second, "AA:BB:CC:0A:00:03").get(
            second.addresses["portal_url"], timeout=5).text
