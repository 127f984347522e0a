"""Issue 3: stored Daraja channels are used — pushes on the active channel, each payment's
queries, callbacks and Pull on its own channel's credentials.

Two channels on the embedded simulator: "default" (the `[daraja]` section, paybill 174379)
and a stored till channel with its own consumer key/secret and passkey. The simulator
accepts a token only for its own account's shortcode and prompts, so a query signed with
the wrong channel's credentials never settles anything.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from support.daemon import to_toml
from support.mpesa import buy, fast_appliance, portal, rows, wait_final
from support.wait import wait_until

from hotspotd.ledger.account_codes import account_code_for
from hotspotd.mpesa.channels import Channel, active_channel, save_channel, set_active_channel
from hotspotd.secretbox import SecretBox, create_key_file
from hotspotd.store.db import Database

TILL = Channel(name="till-2", kind="till", environment="sandbox",
               base_url="https://sandbox.safaricom.co.ke", shortcode="600100",
               till_number="600200", consumer_key="ck-till-plain",
               consumer_secret="cs-till-plain", passkey="pk-till-plain",
               callback_token="tok-till-plain")
SECRETS = ("ck-till-plain", "cs-till-plain", "pk-till-plain", "tok-till-plain")


def store_till_channel(data_dir: Path) -> None:
    create_key_file(data_dir / "secret.key")
    db = Database(data_dir / "hotspotd.sqlite3").open()
    try:
        save_channel(db, SecretBox.from_key_file(data_dir / "secret.key"), TILL, now=1.0)
    finally:
        db.close()


def test_pushes_go_out_on_the_active_channel_and_queries_use_the_payments_own(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store_till_channel(tmp_path)
    with fast_appliance(tmp_path) as appliance:
        sim = appliance.daraja_simulator
        sim.faults.drop_callbacks = True  # settled by STK Query only
        first = buy(appliance, "254708374149", "AA:BB:CC:00:60:01").json()
        assert wait_final(appliance, first["id"])["status"] == "completed"

        set_active_channel(appliance.db, "till-2")
        second = buy(appliance, "254700000000", "AA:BB:CC:00:60:02").json()
        assert wait_final(appliance, second["id"])["status"] == "completed"

        # Pushed on till-2, then the owner switches back: its queries stay on till-2.
        third = buy(appliance, "254711100777", "AA:BB:CC:00:60:03").json()
        set_active_channel(appliance.db, "default")
        prompt = wait_until(lambda: next((p for p in sim.prompts()
                                          if p["phone"] == "254711100777"), None))
        sim.resolve(prompt["checkout_request_id"], "approve")
        assert wait_final(appliance, third["id"])["status"] == "completed"
        fourth = buy(appliance, "254708374149", "AA:BB:CC:00:60:04").json()
        assert wait_final(appliance, fourth["id"])["status"] == "completed"

        stored = {p["public_id"]: p for p in rows(appliance, "SELECT * FROM payments")}
        assert [stored[b["id"]]["channel"] for b in (first, second, third, fourth)] == [
            "default", "till-2", "till-2", "default"]
        by_phone_order = [(p["shortcode"], p["transaction_type"], p["party_b"])
                          for p in sim.prompts()]
        assert by_phone_order == [
            ("174379", "CustomerPayBillOnline", "174379"),
            ("600100", "CustomerBuyGoodsOnline", "600200"),
            ("600100", "CustomerBuyGoodsOnline", "600200"),
            ("174379", "CustomerPayBillOnline", "174379")]
        assert {p["result_code"] for p in sim.prompts()} == {0}  # no 2028: right PartyB
        assert {p["settled_by"] for p in stored.values()} == {"query"}
        assert len(rows(appliance, "SELECT * FROM grants")) == 4
        till_prompt = next(p for p in sim.prompts() if p["shortcode"] == "600100")
        assert "/callbacks/tok-till-plain/stk" in till_prompt["callback_url"]
    for secret in SECRETS:
        assert secret not in caplog.text  # decrypted for the client only, never logged


def test_callbacks_are_matched_against_the_channel_of_their_path(tmp_path: Path) -> None:
    store_till_channel(tmp_path)
    with fast_appliance(tmp_path) as appliance:
        sim = appliance.daraja_simulator
        set_active_channel(appliance.db, "till-2")
        # The simulator calls back on the till channel's own path: confirmed by STK Query
        # with the till's credentials, granted once.
        paid = buy(appliance, "254708374149", "AA:BB:CC:00:61:01").json()
        assert wait_final(appliance, paid["id"])["status"] == "completed"
        wait_until(lambda: sim.prompts()[0]["callbacks_sent"] >= 1, message="callback sent")
        assert rows(appliance, "SELECT * FROM callback_rejections") == []

        # A callback for a default-channel payment posted on the till's path is refused.
        set_active_channel(appliance.db, "default")
        sim.faults.drop_callbacks = True
        waiting = buy(appliance, "254711100888", "AA:BB:CC:00:61:02").json()
        checkout = wait_until(lambda: rows(appliance, "SELECT checkout_request_id FROM payments"
                                                      " WHERE public_id = ?", waiting["id"])[0][
            "checkout_request_id"])
        forged = {"Body": {"stkCallback": {
            "MerchantRequestID": "x", "CheckoutRequestID": checkout, "ResultCode": 0,
            "ResultDesc": "ok", "CallbackMetadata": {"Item": [
                {"Name": "Amount", "Value": 20}, {"Name": "MpesaReceiptNumber",
                                                  "Value": "SIMFORGED1"},
                {"Name": "PhoneNumber", "Value": 254711100888}]}}}}
        answer = requests.post(f"{portal(appliance)}callbacks/tok-till-plain/stk",
                               json=forged, timeout=5)
        assert answer.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
        [rejected] = rows(appliance, "SELECT * FROM callback_rejections")
        assert rejected["channel"] == "till-2" and rejected["reference"] == checkout
        assert "pushed on channel default" in rejected["reason"]
        [payment] = rows(appliance, "SELECT * FROM payments WHERE public_id = ?",
                         waiting["id"])
        assert payment["status"] == "pending" and payment["receipt"] is None


def test_pull_runs_for_every_channel_with_its_own_credentials(tmp_path: Path) -> None:
    store_till_channel(tmp_path)
    with fast_appliance(tmp_path, c2b={"pull_interval_seconds": 3600}) as appliance:
        wait_until(lambda: len(rows(appliance, "SELECT * FROM pull_state WHERE checked_at > 0"))
                   == 2, message="first Pull run on both channels")
        mac = "AA:BB:CC:00:62:01"
        with appliance.db.write() as conn:
            code = account_code_for(conn, mac)
        price = rows(appliance, "SELECT price FROM plans ORDER BY price LIMIT 1")[0]["price"]
        till = appliance.mpesa.purchases.gateway_for("till-2")
        till.simulate_c2b(amount=price, msisdn="254708374149", bill_ref=code)
        wait_until(lambda: appliance.daraja_simulator.c2b_transactions(), message="C2B paid")
        # Only Pull can find it (no C2B URLs registered on the till); on the till's account.
        assert appliance.mpesa.pull.run() == 1
        [seen] = rows(appliance, "SELECT * FROM c2b_transactions")
        assert (seen["channel"], seen["source"], seen["outcome"]) == ("till-2", "pull",
                                                                        "granted")
        [grant] = rows(appliance, "SELECT * FROM grants")
        assert (grant["mac"], grant["receipt"]) == (mac, seen["trans_id"])
        assert appliance.mpesa.pull.run() == 0  # idempotent
        states = {r["channel"]: r for r in rows(appliance, "SELECT * FROM pull_state")}
        assert set(states) == {"default", "till-2"}
        assert all(s["registered_at"] and s["last_error"] is None for s in states.values())


def test_use_channel_and_list_channels_from_the_command_line(tmp_path: Path) -> None:
    store_till_channel(tmp_path)
    config = tmp_path / "hotspotd.toml"
    config.write_text(to_toml({"database": {"path": str(tmp_path / "hotspotd.sqlite3")},
                               "security": {"key_file": str(tmp_path / "secret.key")}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTSPOTD_")}
    base = [sys.executable, "-m", "hotspotd.cli", "mpesa"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args, "--config", str(config)], env=env,
                              capture_output=True, text=True, timeout=60)

    used = run("use-channel", "--name", "till-2")
    assert used.returncode == 0, used.stderr
    listed = run("list-channels")
    assert '"name": "till-2"' in listed.stdout
    assert '"name": "default", "source": "[daraja]", "shortcode": "174379", "active": false' \
        in listed.stdout
    assert listed.stdout.count('"active": true') == 1
    assert run("use-channel", "--name", "nope").returncode != 0
    for secret in SECRETS:
        assert secret not in used.stdout + used.stderr + listed.stdout + listed.stderr
    db = Database(tmp_path / "hotspotd.sqlite3").open()
    try:
        assert active_channel(db.connection()) == "till-2"
    finally:
        db.close()
