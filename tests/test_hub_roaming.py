"""Vouchers that work at every venue of the operator's network (issue 16, docs/HUB.md
"Roaming"): printed at A, redeemed at B once, refused everywhere after; a venue of another
network never hears of them; a venue offline keeps selling and the double redemption it may
cause is found and kept (both customers keep their time) when it is back."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
import requests
from psycopg.rows import dict_row
from support import hub as hub_fixtures
from support.hub import ApplianceSide, write_self_signed

from hotspotd.hub.config import HubConfig
from hotspotd.hub.enrolment import create_venue
from hotspotd.hub.link import enrol_appliance, load_link
from hotspotd.hub.owners import create_owner
from hotspotd.hub.pgstore import HubStore
from hotspotd.hub.roaming import NetworkRecovery, NetworkVouchers
from hotspotd.hub.server import HubListener, tls_context
from hotspotd.hub.shipper import Shipper
from hotspotd.hub.web import create_hub_app
from hotspotd.ledger import payments, recovery, vouchers
from hotspotd.ledger.plans import create_plan
from hotspotd.secretbox import SecretBox

pg_cluster, hub_dsn = hub_fixtures.pg_cluster, hub_fixtures.hub_dsn  # fixtures

AT_B, AT_B_TOO, AT_A, AT_C = ("AA:BB:CC:0B:00:01", "AA:BB:CC:0B:00:02", "AA:BB:CC:0A:00:01",
                              "AA:BB:CC:0C:00:01")


class Venue:
    """An appliance's ledger, enrolled with the hub, and what it runs against it: the
    portal's voucher redemption and one shipper round at a time."""

    def __init__(self, directory: Path, hub: Any, name: str, network: str) -> None:
        self.side = ApplianceSide(directory)
        self.db = self.side.db
        self.box = SecretBox.from_key_file(self.side.key_file)
        token = create_venue(hub.store, name, network)
        self.appliance_id = enrol_appliance(self.db, self.box, hub.url, token,
                                            str(hub.cert)).appliance_id
        self.vouchers = NetworkVouchers(self.db, self.box, timeout=3.0)
        self.shipper = Shipper(SimpleNamespace(
            ship_interval_seconds=1.0, health_interval_seconds=3600, batch_events=500,
            timeout_seconds=5.0, backoff_max_seconds=1, keep_shipped_days=7),
            self.db, self.box)

    def print_vouchers(self, count: int) -> list[str]:
        with self.db.write() as conn:
            plan = create_plan(conn, name="2 hours", price=50, duration_seconds=7200,
                               rate_limit="2M/4M", now=time.time())
        _, made = vouchers.create_batch(self.db, plan_id=plan.id, count=count, now=time.time())
        return [voucher.code for voucher in made]

    def ship(self) -> None:
        """One shipper round: claims on this venue's codes applied, the journal sent."""
        link = load_link(self.db, self.box)
        while self.shipper.round(link):
            pass

    def redeem(self, code: str, mac: str) -> Any:
        return self.vouchers.redeem(code=code, mac=mac, ip=None, now=time.time())

    def voucher(self, code: str) -> dict[str, Any]:
        return dict(self.db.query_one("SELECT * FROM vouchers WHERE code = ?", (code,)))

    def entitled(self, mac: str) -> int:
        row = self.db.query_one("SELECT expires_at FROM entitlements WHERE mac = ?", (mac,))
        return max(0, int(row["expires_at"] - time.time())) if row else 0


@pytest.fixture
def hub(tmp_path: Path, hub_dsn: str) -> Iterator[Any]:
    """The hub's app on a real HTTPS listener in this process, on its own database."""
    store = HubStore(hub_dsn).open()
    cert, key = write_self_signed(tmp_path)
    listener = HubListener(create_hub_app(store, HubConfig(dsn=hub_dsn), secure_cookies=True),
                           "127.0.0.1", 0, threads=4,
                           context=tls_context(str(cert), str(key))).start()
    yield SimpleNamespace(store=store, cert=cert, url=listener.url, dsn=hub_dsn)
    listener.stop()
    store.close()


def hub_rows(dsn: str, sql: str) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(sql).fetchall()


def test_a_voucher_from_a_redeems_once_at_b_and_nowhere_after(tmp_path: Path, hub: Any) -> None:
    a = Venue(tmp_path / "a", hub, "Cafe A", "CBD")
    b = Venue(tmp_path / "b", hub, "Cafe B", "CBD")
    c = Venue(tmp_path / "c", hub, "Hotel C", "Westlands")
    code = a.print_vouchers(3)[0]
    a.ship()  # the hub learns the codes and what they give

    grant = b.redeem(vouchers.format_code(code).lower(), AT_B)  # as a customer types it
    assert grant.seconds == 7200 and b.entitled(AT_B) > 7100
    assert b.redeem(code, AT_B).id == grant.id  # the same device again: the same grant
    with pytest.raises(vouchers.VoucherUsed):
        b.redeem(code, AT_B_TOO)
    with pytest.raises(vouchers.VoucherUsed):  # home asks the hub before its own codes
        a.redeem(code, AT_A)
    with pytest.raises(vouchers.UnknownVoucher):  # another network never hears of it
        c.redeem(code, AT_C)
    assert a.entitled(AT_A) == b.entitled(AT_B_TOO) == c.entitled(AT_C) == 0

    assert a.voucher(code)["status"] == "unused"
    a.ship()  # the claim reaches home: the voucher is used there too
    used = a.voucher(code)
    assert (used["status"], used["used_by_mac"]) == ("used", AT_B) and used["claim_id"]
    roamed = b.db.query("SELECT * FROM roamed_vouchers")
    assert [(row["code"], row["home"], row["mac"]) for row in roamed] == [
        (code, "Cafe A", AT_B)]
    grants = b.db.query("SELECT source, rate_limit FROM grants")
    assert [tuple(row) for row in grants] == [("roamed-voucher", "2M/4M")]
    claims = hub_rows(hub.dsn, "SELECT code, mac FROM voucher_claims")
    assert [(row["code"], row["mac"]) for row in claims] == [(code, AT_B)]
    a.ship()  # home's "used" arrives at the hub: marked by the claim, no conflict
    assert hub_rows(hub.dsn, "SELECT * FROM voucher_conflicts") == []


def test_home_redeems_its_own_codes_through_the_hub_and_before_it_heard_of_them(
        tmp_path: Path, hub: Any) -> None:
    a = Venue(tmp_path / "a", hub, "Cafe A", "CBD")
    b = Venue(tmp_path / "b", hub, "Cafe B", "CBD")
    shipped, fresh = a.print_vouchers(2)
    a.ship()
    a.redeem(shipped, AT_A)  # claimed at the hub first, then granted at home
    assert a.voucher(shipped)["claim_id"] is not None
    with pytest.raises(vouchers.VoucherUsed):
        b.redeem(shipped, AT_B)
    a.redeem(fresh, AT_A)  # printed after the last shipment: the hub does not know it yet
    with pytest.raises(vouchers.VoucherUsed):  # once it is shipped, nobody else may
        a.ship()
        b.redeem(fresh, AT_B)
    assert b.entitled(AT_B) == 0 and a.entitled(AT_A) > 14000


def test_an_offline_home_keeps_selling_and_the_double_redemption_is_kept(
        tmp_path: Path, hub: Any) -> None:
    """The conflict rule: the first claim at the hub is the network's redemption; a home
    venue that redeemed the same code while it could not reach the hub keeps its customer's
    time too, and both the home and the hub record the double redemption."""
    a = Venue(tmp_path / "a", hub, "Cafe A", "CBD")
    b = Venue(tmp_path / "b", hub, "Cafe B", "CBD")
    code = a.print_vouchers(1)[0]
    a.ship()
    with a.db.write() as conn:  # A's uplink is cut
        conn.execute("UPDATE hub_state SET hub_url = 'https://127.0.0.1:9/'")
    a.redeem(code, AT_A)  # offline: redeemed at home anyway
    b.redeem(code, AT_B)  # B reaches the hub first: the network's claim
    assert a.entitled(AT_A) > 7100 and b.entitled(AT_B) > 7100

    with a.db.write() as conn:  # the uplink is back
        conn.execute("UPDATE hub_state SET hub_url = ?", (hub.url,))
    a.ship()
    conflict = a.db.query("SELECT detail FROM events WHERE kind = 'voucher.conflict'")
    assert len(conflict) == 1 and "Cafe B" in conflict[0]["detail"]
    found = hub_rows(hub.dsn, "SELECT home_used_by_mac FROM voucher_conflicts")
    assert [row["home_used_by_mac"] for row in found] == [AT_A]
    assert a.entitled(AT_A) > 7100 and b.entitled(AT_B) > 7100  # nobody loses paid time
    page = owner_page(hub, f"venues/{a.appliance_id}")  # the operator sees it, at A
    assert 'id="conflicts"' in page and code in page and AT_A in page and "Cafe B" in page


def owner_page(hub: Any, path: str) -> str:
    """A page of the hub's owner UI over HTTPS, logged in as a new owner."""
    create_owner(hub.store, "operator", "correct horse battery")
    session, ca = requests.Session(), str(hub.cert)
    form = session.get(hub.url + "login", timeout=10, verify=ca).text
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    answer = session.post(hub.url + "login", timeout=10, verify=ca, data={
        "username": "operator", "password": "correct horse battery", "csrf": token})
    assert answer.ok, answer.text[:300]
    page = session.get(hub.url + path, timeout=10, verify=ca)
    assert page.status_code == 200, page.text[:300]
    return page.text


def test_a_foreign_code_is_refused_when_the_hub_cannot_be_asked(tmp_path: Path,
                                                                 hub: Any) -> None:
    a = Venue(tmp_path / "a", hub, "Cafe A", "CBD")
    b = Venue(tmp_path / "b", hub, "Cafe B", "CBD")
    code = a.print_vouchers(1)[0]
    a.ship()
    with b.db.write() as conn:
        conn.execute("UPDATE hub_state SET hub_url = 'https://127.0.0.1:9/'")
    with pytest.raises(vouchers.UnknownVoucher, match="cannot be asked right now"):
        b.redeem(code, AT_B)
    assert b.entitled(AT_B) == 0
    assert hub_rows(hub.dsn, "SELECT * FROM voucher_claims") == []


# --- paid time: receipt + paying phone at a sister venue ----------------------------------

PAYER = "254708374149"


def paid_at(venue: Venue, mac: str, receipt: str, seconds: int = 3600) -> None:
    """A completed M-Pesa purchase at `venue` as its own code writes it (payment, grant)."""
    now = time.time()
    with venue.db.write() as conn:
        plan = create_plan(conn, name="1 hour", price=20, duration_seconds=seconds,
                           rate_limit=None, now=now)
    payment = payments.create_payment(venue.db, plan=plan, phone=PAYER, mac=mac, ip=None,
                                      now=now)
    payments.record_push_accepted(venue.db, payment.id, merchant_request_id="m",
                                  checkout_request_id=f"ws_CO_{receipt}", now=now,
                                  next_query_at=now + 60)
    settled = payments.apply_result(venue.db, checkout_request_id=f"ws_CO_{receipt}",
                                    result_code=0, result_desc="ok", source="callback",
                                    now=now, receipt=receipt, paid_amount=20)
    assert settled.grant is not None


def recover(venue: Venue, receipt: str, phone: str, mac: str) -> Any:
    return NetworkRecovery(venue.db, venue.box).recover(receipt=receipt, phone=phone, mac=mac,
                                                        ip=None, now=time.time())


def test_paid_time_moves_to_a_sister_venue_once(tmp_path: Path, hub: Any) -> None:
    a = Venue(tmp_path / "a", hub, "Cafe A", "CBD")
    b = Venue(tmp_path / "b", hub, "Cafe B", "CBD")
    c = Venue(tmp_path / "c", hub, "Hotel C", "Westlands")
    paid_at(a, AT_A, "RKT1A2B3C4")
    a.ship()
    assert a.entitled(AT_A) > 3500

    with pytest.raises(recovery.RecoveryRefused):  # the wrong phone: no more than "no match"
        recover(b, "RKT1A2B3C4", "0722000000", AT_B)
    with pytest.raises(recovery.RecoveryRefused):  # another network never hears of it
        recover(c, "RKT1A2B3C4", "0708374149", AT_C)
    moved = recover(b, "rkt1a2b3c4", "+254 708 374149", AT_B)
    assert 3500 < moved.seconds <= 3600 and b.entitled(AT_B) > 3500
    assert recover(b, "RKT1A2B3C4", PAYER, AT_B).seconds == moved.seconds  # a retry
    with pytest.raises(recovery.AlreadyRecovered):
        recover(b, "RKT1A2B3C4", PAYER, AT_B_TOO)

    a.ship()  # home hears of the move: the paying device's time there is taken off
    assert a.entitled(AT_A) == 0
    ops = a.db.query("SELECT action FROM router_ops WHERE mac = ? ORDER BY id", (AT_A,))
    assert [row["action"] for row in ops][-1] == "disconnect"
    assert b.entitled(AT_B) > 3500 and c.entitled(AT_C) == 0


def test_time_cannot_move_when_the_hub_cannot_be_asked(tmp_path: Path, hub: Any) -> None:
    a = Venue(tmp_path / "a", hub, "Cafe A", "CBD")
    b = Venue(tmp_path / "b", hub, "Cafe B", "CBD")
    paid_at(a, AT_A, "RKT9Z8Y7X6")
    a.ship()
    with b.db.write() as conn:
        conn.execute("UPDATE hub_state SET hub_url = 'https://127.0.0.1:9/'")
    with pytest.raises(recovery.RecoveryRefused, match="cannot be asked right now"):
        recover(b, "RKT9Z8Y7X6", PAYER, AT_B)
    assert b.entitled(AT_B) == 0 and a.entitled(AT_A) > 3500
