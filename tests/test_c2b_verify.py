"""Issue 3: C2B confirmations from a source that is not trusted grant only once Daraja (Pull
Transactions) lists the TransID; forged ones grant nothing and are stored with why.

Real HTTP against the embedded Daraja simulator. No `callback_allowlist` (the default):
every source is untrusted, as for STK callbacks.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from support.mpesa import callback_root, rows
from support.wait import wait_until

from hotspotd.app import Appliance
from hotspotd.ledger.account_codes import account_code_for

MAC = "AA:BB:CC:00:70:01"
OTHER_MAC = "AA:BB:CC:00:70:02"


def code_for(appliance: Appliance, mac: str) -> str:
    with appliance.db.write() as conn:
        return account_code_for(conn, mac)


def confirm(appliance: Appliance, trans_id: str, bill_ref: str,
            amount: str = "20.00") -> dict[str, Any]:
    body = {"TransactionType": "Pay Bill", "TransID": trans_id, "TransTime": "20261128101010",
            "TransAmount": amount, "BusinessShortCode": "174379", "BillRefNumber": bill_ref,
            "MSISDN": "x" * 64, "FirstName": "Mallory"}
    answer = requests.post(callback_root(appliance) + "/c2b/confirmation", json=body,
                           timeout=5)
    assert answer.status_code == 200
    return answer.json()


def unverified(appliance: Appliance, trans_id: str) -> dict[str, Any]:
    [row] = rows(appliance, "SELECT * FROM c2b_unverified WHERE trans_id = ?", trans_id)
    return row


def register_urls(appliance: Appliance) -> None:
    root = callback_root(appliance)
    appliance.mpesa.purchases.gateway_for("default").register_c2b_urls(
        confirmation_url=root + "/c2b/confirmation", validation_url=root + "/c2b/validation")


@pytest.mark.appliance(c2b={"verify_within_seconds": 2})
def test_forged_confirmation_grants_nothing_and_is_rejected_with_why(appliance: Appliance) -> None:
    code = code_for(appliance, MAC)
    assert confirm(appliance, "SIMFAKE001", code) == {"ResultCode": 0,
                                                      "ResultDesc": "Success"}
    assert unverified(appliance, "SIMFAKE001")["state"] == "pending"
    assert rows(appliance, "SELECT * FROM grants") == []
    assert confirm(appliance, "SIMFAKE001", code)["ResultCode"] == 0  # replay: nothing
    wait_until(lambda: unverified(appliance, "SIMFAKE001")["state"] != "pending",
               timeout=10, message="the verdict")
    verdict = unverified(appliance, "SIMFAKE001")
    assert verdict["state"] == "rejected" and verdict["answered"] >= 1
    assert "does not list TransID SIMFAKE001" in verdict["reason"]
    [rejected] = rows(appliance, "SELECT * FROM callback_rejections")
    assert (rejected["kind"], rejected["channel"], rejected["reference"]) == (
        "c2b-confirmation", "default", "SIMFAKE001")
    assert "nothing granted" in rejected["reason"]
    assert rows(appliance, "SELECT * FROM grants") == []
    assert rows(appliance, "SELECT * FROM c2b_transactions") == []
    assert rows(appliance, "SELECT * FROM unmatched_payments") == []
    assert "Mallory" not in str(rows(appliance, "SELECT * FROM c2b_unverified"))


def test_a_real_confirmation_is_verified_by_pull_then_granted_once(appliance: Appliance) -> None:
    register_urls(appliance)
    code = code_for(appliance, MAC)
    paid = appliance.mpesa.purchases.gateway_for("default").simulate_c2b(
        amount=20, msisdn="0711222333", bill_ref=code)
    wait_until(lambda: rows(appliance, "SELECT * FROM grants"), message="the grant")
    assert unverified(appliance, paid["TransID"])["state"] == "confirmed"
    [seen] = rows(appliance, "SELECT * FROM c2b_transactions")
    assert (seen["trans_id"], seen["outcome"], seen["source"]) == (
        paid["TransID"], "granted", "confirmation")
    [grant] = rows(appliance, "SELECT * FROM grants")
    assert (grant["mac"], grant["receipt"], grant["seconds"]) == (MAC, paid["TransID"], 3600)
    assert appliance.daraja_simulator.stats()["pull_query"] >= 1
    confirm(appliance, paid["TransID"], code)  # a replay, forged or not: nothing
    # Proved once a later real payment is verified and granted: checks run one at a
    # time, in order, so anything the replay set in motion is done by then.
    appliance.mpesa.purchases.gateway_for("default").simulate_c2b(
        amount=20, msisdn="0711222334", bill_ref=code_for(appliance, OTHER_MAC))
    wait_until(lambda: rows(appliance, "SELECT * FROM grants WHERE mac = ?", OTHER_MAC),
               message="the later payment's grant")
    assert len(rows(appliance, "SELECT * FROM grants WHERE mac = ?", MAC)) == 1


def test_a_real_transid_with_forged_values_grants_what_daraja_says(appliance: Appliance) -> None:
    appliance.daraja_simulator.faults.drop_callbacks = True  # the real one is lost
    register_urls(appliance)
    code = code_for(appliance, MAC)
    thief = code_for(appliance, OTHER_MAC)
    paid = appliance.mpesa.purchases.gateway_for("default").simulate_c2b(
        amount=20, msisdn="0711222333", bill_ref=code)
    wait_until(lambda: appliance.daraja_simulator.c2b_transactions(), message="paid")
    confirm(appliance, paid["TransID"], thief, amount="50.00")
    wait_until(lambda: rows(appliance, "SELECT * FROM grants"), message="the grant")
    [grant] = rows(appliance, "SELECT * FROM grants")
    assert (grant["mac"], grant["seconds"]) == (MAC, 3600)  # Pull's account and amount
    [noted] = rows(appliance, "SELECT * FROM callback_rejections")
    assert "claimed KES 50.00" in noted["reason"] and "Pull's kept" in noted["reason"]


@pytest.mark.appliance(c2b={"verify_within_seconds": 2})
def test_unverifiable_confirmation_is_held_for_the_owner_not_granted(appliance: Appliance) -> None:
    code = code_for(appliance, MAC)
    appliance.daraja_simulator.faults.spike_arrest_probability = 1.0  # Daraja says no
    confirm(appliance, "SIMHOLD001", code)
    wait_until(lambda: unverified(appliance, "SIMHOLD001")["state"] != "pending",
               timeout=10, message="the verdict")
    assert unverified(appliance, "SIMHOLD001")["state"] == "held"
    [held] = rows(appliance, "SELECT * FROM unmatched_payments")
    assert (held["receipt"], held["amount"]) == ("SIMHOLD001", 20)
    assert "could not be checked with Daraja" in held["reason"]
    assert rows(appliance, "SELECT * FROM grants") == []


@pytest.mark.appliance(daraja={"callback_allowlist": ["127.0.0.1"]})
def test_a_trusted_source_grants_directly_as_before(appliance: Appliance) -> None:
    code = code_for(appliance, MAC)
    confirm(appliance, "SIMTRUST01", code)
    [grant] = rows(appliance, "SELECT * FROM grants")  # at once, no Pull asked
    assert (grant["mac"], grant["receipt"]) == (MAC, "SIMTRUST01")
    assert rows(appliance, "SELECT * FROM c2b_unverified") == []
    assert appliance.daraja_simulator.stats().get("pull_query", 0) == 0
