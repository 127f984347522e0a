"""Choosing and removing Daraja channels in the owner UI, over real HTTP against a running
appliance (embedded Daraja simulator).

The channel list shows "default" (the `[daraja]` section) and the stored channels, with the
one new STK pushes go out on marked. "Use for new payments" takes effect for the very next
purchase (the push flow reads the active channel at every push, as after the CLI's
`use-channel`). "Remove" is refused while the channel is in use, while a payment pushed on
it has no final answer, or while a C2B confirmation on it waits for its Pull check; once
removed, its callback path answers 404 and its Pull stops. Cashiers and forms without the
CSRF token are refused; every change is audited; no secret appears in any answer.

Each test has its own appliance with the till channel added through the form; every answer
a test got is checked for secrets after it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.admin_http import CASHIER, OWNER, add_account, csrf_of, owner_session
from support.mpesa import buy, portal, rows, wait_final
from support.wait import wait_until

from hotspotd.app import Appliance
from hotspotd.mpesa.channels import (
    Channel,
    active_channel,
    load_channels,
    remove_channel,
    save_channel,
    set_active_channel,
)
from hotspotd.secretbox import SecretBox, create_key_file
from hotspotd.store.db import Database

CHANNEL = "till-2"
CHANNEL_FORM = {"name": CHANNEL, "kind": "till", "environment": "sandbox", "base_url": "",
                "shortcode": "600100", "till_number": "600200",
                "consumer_key": "CK-till-never-shown-31",
                "consumer_secret": "CS-till-never-shown-32", "passkey": "PK-till-never-shown-33"}
WARNING = ("M-Pesa messages sent to this channel&#39;s callback URLs will be refused from now"
           " on; register another channel&#39;s URLs first (hotspotd mpesa register-c2b)")
PENDING_PHONE = "254711100555"  # not a self-answering simulator number: stays pending

BODIES: list[str] = []  # every answer the running test got, checked for secrets after it


@pytest.fixture
def appliance_config() -> dict[str, dict[str, Any]]:
    return {"c2b": {"pull_interval_seconds": 3600}}  # Pull runs when a test says so


@pytest.fixture
def base(portal: str) -> str:
    return portal + "admin/"


@pytest.fixture
def till(appliance: Appliance, base: str, owner: requests.Session) -> Iterator[Channel]:
    """The stored till channel, added through the Settings form like an owner would; after
    the test, no answer it got shows a secret."""
    BODIES.clear()
    added = post(owner, base, "settings/channels", CHANNEL_FORM)
    assert added.status_code == 200 and "added" in added.text
    channel = {c.name: c for c in load_channels(appliance.db, appliance.settings.box())}[CHANNEL]
    yield channel
    assert_no_secret_in(BODIES, appliance, channel)


def assert_no_secret_in(bodies: list[str], appliance: Appliance, till: Channel) -> None:
    daraja = appliance.config.daraja
    secrets = [CHANNEL_FORM["consumer_key"], CHANNEL_FORM["consumer_secret"],
               CHANNEL_FORM["passkey"], till.callback_token, daraja.consumer_key,
               daraja.consumer_secret, daraja.passkey, appliance.config.web.callback_token]
    assert bodies and all(len(secret) >= 8 for secret in secrets)
    for body in bodies:
        for secret in secrets:
            assert secret not in body


def post(session: requests.Session, base: str, path: str,
         data: dict[str, str]) -> requests.Response:
    """POST a Settings form with the CSRF token of a freshly loaded Settings page."""
    page = session.get(base + "settings", timeout=5)
    BODIES.append(page.text)
    response = session.post(base + path, data={**data, "csrf_token": csrf_of(page.text)},
                            timeout=10)
    BODIES.append(response.text)
    return response


def settings_page(session: requests.Session, base: str) -> str:
    text = session.get(base + "settings", timeout=5).text
    BODIES.append(text)
    return text


def row_of(page: str, name: str) -> str:
    """The HTML of one row of the channel list."""
    start = page.index(f'<tr id="channel-row-{name}">')
    return page[start:page.index("</tr>", start)]


def audits(appliance: Appliance, action: str) -> list[dict[str, object]]:
    return rows(appliance, "SELECT * FROM admin_audit WHERE action = ? ORDER BY id", action)


def channel_state(appliance: Appliance) -> list[tuple[object, ...]]:
    return [tuple(r) for r in appliance.db.query("SELECT * FROM daraja_channels ORDER BY name")]


def test_list_shows_default_in_use_with_its_shortcode(
        appliance: Appliance, base: str, owner: requests.Session, till: Channel) -> None:
    page = settings_page(owner, base)
    default = row_of(page, "default")
    assert "in use for new payments" in default and 'id="in-use"' in default
    assert f"<td>{appliance.config.daraja.shortcode}</td>" in default
    assert 'id="use-default"' not in default and "Remove" not in default
    stored = row_of(page, CHANNEL)
    assert "in use for new payments" not in stored and 'id="use-till-2"' in stored
    assert 'id="remove-till-2"' in stored and WARNING in stored
    assert 'name="understood" value="1" required' in stored
    assert page.count("in use for new payments") == 1


def test_cashier_sees_the_marker_but_cannot_choose_or_remove(
        appliance: Appliance, base: str, till: Channel) -> None:
    add_account(appliance.db, CASHIER, role="cashier")
    cashier = owner_session(base, *CASHIER)
    page = settings_page(cashier, base)
    assert "in use for new payments" in row_of(page, "default")
    assert 'id="use-till-2"' not in page and 'id="remove-till-2"' not in page
    before, audited = channel_state(appliance), rows(appliance, "SELECT * FROM admin_audit")
    for path, data in (("settings/channels/use", {"name": CHANNEL}),
                       ("settings/channels/remove", {"name": CHANNEL, "understood": "1"})):
        refused = post(cashier, base, path, data)
        assert refused.status_code == 403, path
        assert "A cashier account can look but not change anything." in refused.text
    assert channel_state(appliance) == before
    assert rows(appliance, "SELECT * FROM admin_audit") == audited


def test_forms_without_the_csrf_token_are_refused(
        appliance: Appliance, base: str, owner: requests.Session, till: Channel) -> None:
    before, audited = channel_state(appliance), rows(appliance, "SELECT * FROM admin_audit")
    for path, data in (("settings/channels/use", {"name": CHANNEL}),
                       ("settings/channels/remove", {"name": CHANNEL, "understood": "1"})):
        refused = owner.post(base + path, data=data, timeout=5)
        BODIES.append(refused.text)
        assert refused.status_code == 403, path
        wrong = owner.post(base + path, data={**data, "csrf_token": "forged"}, timeout=5)
        assert wrong.status_code == 403, path
    assert channel_state(appliance) == before
    assert rows(appliance, "SELECT * FROM admin_audit") == audited


def test_use_for_new_payments_takes_effect_for_the_next_purchase(
        appliance: Appliance, base: str, owner: requests.Session, till: Channel) -> None:
    first = buy(appliance, "254708374149", "AA:BB:CC:00:70:01").json()
    assert wait_final(appliance, first["id"])["status"] == "completed"

    used = post(owner, base, "settings/channels/use", {"name": CHANNEL})
    assert used.status_code == 200
    assert "New payments now go out on channel &#39;till-2&#39;" in used.text
    assert "Payments already made keep their own channel." in used.text
    assert "in use for new payments" in row_of(used.text, CHANNEL)
    assert 'id="use-default"' in row_of(used.text, "default")
    assert active_channel(appliance.db.connection()) == CHANNEL
    [audit] = audits(appliance, "channel.use")
    assert (audit["username"], audit["target"]) == (OWNER[0], CHANNEL)
    assert json.loads(str(audit["before"])) == {"active": "default"}
    assert json.loads(str(audit["after"])) == {"active": CHANNEL}

    second = buy(appliance, "254708374149", "AA:BB:CC:00:70:02").json()
    assert wait_final(appliance, second["id"])["status"] == "completed"
    channels = {r["public_id"]: r["channel"] for r in rows(appliance, "SELECT * FROM payments")}
    assert (channels[first["id"]], channels[second["id"]]) == ("default", CHANNEL)
    prompts = appliance.daraja_simulator.prompts()
    assert [(p["shortcode"], p["party_b"]) for p in prompts] == [("174379", "174379"),
                                                                 ("600100", "600200")]
    assert f"/callbacks/{till.callback_token}/stk" in prompts[1]["callback_url"]

    again = post(owner, base, "settings/channels/use", {"name": CHANNEL})
    assert again.status_code == 200 and "already in use" in again.text
    assert len(audits(appliance, "channel.use")) == 1
    unknown = post(owner, base, "settings/channels/use", {"name": "nope"})
    assert unknown.status_code == 400 and "no stored Daraja channel named" in unknown.text
    assert active_channel(appliance.db.connection()) == CHANNEL


def assert_not_removed(appliance: Appliance, till: Channel, refused: requests.Response,
                       before: list[tuple[object, ...]], reason: str) -> None:
    assert refused.status_code == 400
    assert 'id="channel-list-error"' in refused.text
    assert "Channel &#39;till-2&#39; was not removed" in refused.text and reason in refused.text
    assert channel_state(appliance) == before
    assert appliance.mpesa.callbacks.channel_tokens[till.callback_token] == CHANNEL
    assert audits(appliance, "channel.remove") == []


def test_remove_is_refused_while_the_channel_is_in_use(
        appliance: Appliance, base: str, owner: requests.Session, till: Channel) -> None:
    assert post(owner, base, "settings/channels/use", {"name": CHANNEL}).status_code == 200
    assert 'id="remove-till-2"' not in row_of(settings_page(owner, base), CHANNEL)
    before = channel_state(appliance)
    refused = post(owner, base, "settings/channels/remove",
                   {"name": CHANNEL, "understood": "1"})
    assert_not_removed(appliance, till, refused, before, "it is in use for new payments")
    default = post(owner, base, "settings/channels/remove",
                   {"name": "default", "understood": "1"})
    assert default.status_code == 400 and "cannot be removed here" in default.text


def test_remove_is_refused_while_a_payment_on_it_is_pending(
        appliance: Appliance, base: str, owner: requests.Session, till: Channel) -> None:
    assert post(owner, base, "settings/channels/use", {"name": CHANNEL}).status_code == 200
    waiting = buy(appliance, PENDING_PHONE, "AA:BB:CC:00:70:03").json()  # on till-2
    wait_until(lambda: any(p["phone"] == PENDING_PHONE
                           for p in appliance.daraja_simulator.prompts()), message="prompt")
    assert post(owner, base, "settings/channels/use", {"name": "default"}).status_code == 200
    [payment] = rows(appliance, "SELECT * FROM payments WHERE public_id = ?", waiting["id"])
    assert (payment["channel"], payment["status"]) == (CHANNEL, "pending")
    before = channel_state(appliance)
    unticked = post(owner, base, "settings/channels/remove", {"name": CHANNEL})
    assert_not_removed(appliance, till, unticked, before, "tick &#34;I understand&#34;")
    refused = post(owner, base, "settings/channels/remove",
                   {"name": CHANNEL, "understood": "1"})
    assert_not_removed(appliance, till, refused, before, "1 payment(s) pushed on it have no"
                                                         " final answer yet")
    # Its STK query still goes out on till-2 after the switch: approve, and it completes.
    prompt = next(p for p in appliance.daraja_simulator.prompts()
                  if p["phone"] == PENDING_PHONE)
    appliance.daraja_simulator.resolve(prompt["checkout_request_id"], "approve")
    assert wait_final(appliance, waiting["id"])["status"] == "completed"


def test_remove_is_refused_while_a_c2b_confirmation_on_it_waits_for_pull(
        appliance: Appliance, base: str, owner: requests.Session, till: Channel) -> None:
    now = time.time()
    with appliance.db.write() as conn:  # as `C2BVerifier.hold` leaves it; checked much later
        conn.execute("INSERT INTO c2b_unverified (trans_id, channel, source, amount,"
                     " received_at, next_check_at) VALUES ('TESTWAIT01', ?, '203.0.113.9',"
                     " '20', ?, ?)", (CHANNEL, now, now + 3600))
    before = channel_state(appliance)
    refused = post(owner, base, "settings/channels/remove",
                   {"name": CHANNEL, "understood": "1"})
    assert_not_removed(appliance, till, refused, before,
                       "still being checked with Pull Transactions")
    with appliance.db.write() as conn:  # decided: history only, no longer blocks
        conn.execute("UPDATE c2b_unverified SET state = 'rejected', decided_at = ?"
                     " WHERE trans_id = 'TESTWAIT01'", (now,))


def test_remove_succeeds_once_nothing_needs_the_channel(
        appliance: Appliance, base: str, owner: requests.Session, till: Channel,
        caplog: pytest.LogCaptureFixture) -> None:
    pulls = appliance.mpesa.pull
    assert pulls is not None
    pulls.run()  # Pull registered and ran for till-2 too
    [state] = rows(appliance, "SELECT * FROM pull_state WHERE channel = ?", CHANNEL)
    assert state["registered_at"] and state["last_error"] is None
    callback = f"{portal(appliance)}callbacks/{till.callback_token}/stk"
    assert requests.post(callback, json={}, timeout=5).status_code == 200  # known path

    removed = post(owner, base, "settings/channels/remove",
                   {"name": CHANNEL, "understood": "1"})
    assert removed.status_code == 200
    assert "Channel &#39;till-2&#39; removed." in removed.text and WARNING in removed.text
    assert '<tr id="channel-row-till-2">' not in removed.text
    assert "in use for new payments" in row_of(removed.text, "default")
    assert appliance.db.query_one("SELECT 1 FROM daraja_channels WHERE name = ?",
                                  (CHANNEL,)) is None
    assert till.callback_token not in appliance.mpesa.callbacks.channel_tokens
    for path in ("stk", "c2b/validation", "c2b/confirmation"):
        gone = requests.post(f"{portal(appliance)}callbacks/{till.callback_token}/{path}",
                             json={}, timeout=5)
        assert gone.status_code == 404, path
    [audit] = audits(appliance, "channel.remove")
    assert (audit["username"], audit["target"], audit["after"]) == (OWNER[0], CHANNEL, None)
    assert json.loads(str(audit["before"]))["shortcode"] == "600100"

    # Nothing running uses it: Pull runs for "default" only, without an error, and the
    # next purchase goes out on default.
    caplog.set_level(logging.INFO)
    caplog.clear()
    pulls.run()
    assert CHANNEL not in caplog.text and "skipped" not in caplog.text
    assert "Pull Transactions" not in caplog.text  # nothing failed
    assert rows(appliance, "SELECT * FROM pull_state WHERE channel = ?", CHANNEL) == []
    after = buy(appliance, "254708374149", "AA:BB:CC:00:70:04").json()
    assert wait_final(appliance, after["id"])["status"] == "completed"
    [payment] = rows(appliance, "SELECT channel FROM payments WHERE public_id = ?", after["id"])
    assert payment["channel"] == "default"

    again = post(owner, base, "settings/channels/remove", {"name": CHANNEL, "understood": "1"})
    assert again.status_code == 400 and "no stored Daraja channel named" in again.text


def test_no_secret_appears_in_any_answer(
        appliance: Appliance, base: str, owner: requests.Session, till: Channel) -> None:
    assert post(owner, base, "settings/channels/use", {"name": CHANNEL}).status_code == 200
    settings_page(owner, base)
    BODIES.append(owner.get(base + "settings", params={"channel": CHANNEL}, timeout=5).text)
    BODIES.append(owner.get(base + "audit", timeout=5).text)
    assert len(BODIES) >= 6
    assert_no_secret_in(BODIES, appliance, till)


def test_remove_channel_blocks_only_on_what_still_needs_the_channel(tmp_path: Path) -> None:
    """The data function alone: final payments and decided C2B checks are history."""
    create_key_file(tmp_path / "k")
    db = Database(tmp_path / "d.sqlite3").open()
    try:
        channel = Channel(name="b", kind="paybill", environment="sandbox", base_url="x",
                          shortcode="1", consumer_key="k", consumer_secret="s", passkey="p",
                          callback_token="t")
        save_channel(db, SecretBox.from_key_file(tmp_path / "k"), channel, now=1.0)
        with db.write() as conn:
            conn.execute("INSERT INTO plans (name, price, duration_seconds, created_at)"
                         " VALUES ('p', 10, 60, 1)")
            for n, status in enumerate(("completed", "failed", "expired", "cancelled")):
                conn.execute("INSERT INTO payments (public_id, plan_id, mac, phone, amount,"
                             " status, created_at, channel) VALUES (?, 1, 'm', 'p', 10, ?, 1,"
                             " 'b')", (f"id{n}", status))
            conn.execute("INSERT INTO pull_state (channel, registered_at) VALUES ('b', 1)")
        set_active_channel(db, "b")
        with pytest.raises(ValueError, match="in use for new payments"):
            remove_channel(db, "b")
        set_active_channel(db, "default")
        with pytest.raises(ValueError, match="cannot be removed"):
            remove_channel(db, "default")
        assert remove_channel(db, "b") == {"name": "b", "kind": "paybill",
                                           "environment": "sandbox", "base_url": "x",
                                           "shortcode": "1", "till_number": ""}
        assert db.query("SELECT * FROM pull_state") == []
        with pytest.raises(ValueError, match="no stored Daraja channel"):
            remove_channel(db, "b")
    finally:
        db.close()
