"""Issue 16's acceptance, many venues: REAL appliances (`hotspotd run`, each with its own
embedded MikroTik and Daraja simulators) enrolled with the CLI at a REAL hub
(`hotspotd hub serve`, HTTPS) on PostgreSQL. Customers buy from phones on each venue's
simulated WiFi; a voucher printed at A is redeemed at B exactly once (through B's portal);
the hub is SIGKILLed mid-stream, an appliance is SIGKILLed mid-batch, the hub is down while
a venue keeps selling. Each time: every journal seq of the venue exactly
once at the hub, and the hub's projections equal the venue's own tables.

Moments are proved by the event that marks them, never by sleeping: the "mid-batch" kills
use support.hub.Uplink, an HTTPS proxy in front of the hub that withholds the hub's answer
to one batch, so the kill lands exactly when the hub has stored a batch the venue has not
recorded (the case a resend must not double).

One PostgreSQL cluster for the session; each test its own hub database and hub process.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import requests
from support import hub as hub_fixtures
from support.daemon import Daemon
from support.hub import ApplianceSide, HubProcess, Uplink, hotspotd_cli, hub_rows, sell, wait_for
from support.mpesa import accepted, buy, wait_final
from support.phones import daemon_phone

from hotspotd.secretbox import create_key_file
from hotspotd.simulators.phones import SimulatedPhone
from hotspotd.store.db import Database

pg_cluster, hub_dsn = hub_fixtures.pg_cluster, hub_fixtures.hub_dsn  # fixtures

APPROVES = "254700000000"  # the Daraja simulator approves it by itself
PERSON = "25471110{:04d}"  # a person who approves on the simulator's phone page
PRICE = 20
PASSWORD = "correct horse battery"
NETWORK = "CBD"


class Venue:
    """One venue: a `hotspotd run` daemon on its own data directory, enrolled at the hub
    with `hotspotd hub enroll` on both sides BEFORE its first start, `[hub] enabled`."""

    def __init__(self, directory: Path, hub: HubProcess, name: str, *,
                 hub_url: str | None = None, **hub_options: Any) -> None:
        self.name, self.hub = name, hub
        key_file = directory / "secret.key"
        directory.mkdir(parents=True)
        create_key_file(key_file)
        self.daemon = Daemon(directory, {
            "security": {"key_file": str(key_file)},
            "venue": {"name": name},
            "limits": {"push_per_device": 1000, "push_per_phone": 1000,
                       "open_per_device": 10},  # the abuse limits are not under test
            "hub": {"enabled": True, "ship_interval_seconds": 1.0,
                    "health_interval_seconds": 3600,  # one health row per start, no more
                    "backoff_max_seconds": 1, "timeout_seconds": 10.0, **hub_options},
        })
        self.daemon.seed_plan(name="1 hour", price=PRICE, duration_seconds=3600)
        self.daemon.write_config()
        made = hub.cli("enroll", "--venue", name, "--network", NETWORK)
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip().splitlines()[-1]
        done = hotspotd_cli("hub", "enroll", "--config", str(self.daemon.config_path),
                            "--hub-url", hub_url or hub.url, "--token", token,
                            "--ca-file", str(hub.cert))
        assert done.returncode == 0, done.stderr
        assert token not in done.stdout + done.stderr
        self.appliance_id = hub_rows(hub.dsn, "SELECT id FROM appliances WHERE name = %s",
                                     name)[0]["id"]
        self.phones: dict[str, SimulatedPhone] = {}

    # -- the venue ----------------------------------------------------------------------
    def start(self) -> Venue:
        self.daemon.start()
        self.phones = {mac: daemon_phone(self.daemon, mac) for mac in self.phones}  # rejoin
        return self

    def phone(self, mac: str) -> SimulatedPhone:
        if mac not in self.phones:
            self.phones[mac] = daemon_phone(self.daemon, mac)
        return self.phones[mac]

    def buy(self, mac: str, number: str = APPROVES) -> dict[str, Any]:
        """Phone `mac` buys the plan, paying from M-Pesa `number`; the final status. A number
        other than APPROVES is a person who approves the prompt on the simulator's phone
        page (one open prompt per number, so a burst needs a number per customer)."""
        phone = self.phone(mac)
        public_id = accepted(buy(self.daemon.portal_url, number, phone))
        if number != APPROVES:
            prompt = wait_for(lambda: next((p for p in self.prompts() if p["phone"] == number
                                            and p["state"] == "pending"), None),
                              timeout=20, message=f"the prompt on {number}")
            answered = requests.post(f"{self.daemon.runtime['daraja_url'].rstrip('/')}/phone/"
                                     f"{prompt['checkout_request_id']}/approve", timeout=5,
                                     allow_redirects=False)
            assert answered.status_code < 400, answered.text
        return wait_final(self.daemon.portal_url, public_id, timeout=30, device=phone)

    def online(self) -> set[str]:
        """MACs the venue's router simulator lists in /ip/hotspot/active."""
        rows = requests.get(self.daemon.runtime["router_status_url"] + "active.json",
                            timeout=5).json()
        return {row["mac-address"] for row in rows}

    def prompts(self) -> list[dict[str, Any]]:
        """The STK prompts the venue's own Daraja simulator saw."""
        return requests.get(self.daemon.runtime["daraja_url"].rstrip("/")
                            + "/simulator/prompts", timeout=5).json()

    # -- its journal and where shipping stands --------------------------------------------
    def newest_seq(self) -> int:
        return self.daemon.query("SELECT COALESCE(MAX(seq), 0) AS n FROM hub_journal")[0]["n"]

    def recorded_seq(self) -> int:
        """What the venue has recorded as acknowledged by the hub."""
        return self.daemon.query("SELECT shipped_seq FROM hub_state")[0]["shipped_seq"]

    def hub_seq(self) -> int:
        """The hub's `shipped_seq` for this venue: every seq up to it stored once."""
        return hub_rows(self.hub.dsn, "SELECT shipped_seq FROM appliances WHERE id = %s",
                        self.appliance_id)[0]["shipped_seq"]

    def caught_up(self) -> bool:
        newest = self.newest_seq()
        return newest > 0 and self.hub_seq() == newest == self.recorded_seq()

    def wait_caught_up(self, timeout: float = 30) -> None:
        wait_for(self.caught_up, timeout=timeout, interval=0.1,
                 message=f"{self.name}'s journal all at the hub")


def assert_exactly_once(venue: Venue) -> None:
    """Every journal seq of the venue once at the hub, the same event under each; the hub's
    payments, grants and devices equal the venue's."""
    dsn, appliance = venue.hub.dsn, venue.appliance_id
    newest = venue.newest_seq()
    counts = hub_rows(dsn, "SELECT COUNT(*) AS n, COUNT(DISTINCT seq) AS distinct_seqs,"
                      " MAX(seq) AS top FROM events WHERE appliance_id = %s", appliance)[0]
    assert counts == {"n": newest, "distinct_seqs": newest, "top": newest}, (counts, newest)
    local = {row["seq"]: (row["kind"], json.loads(row["body"])) for row in venue.daemon.query(
        "SELECT seq, kind, body FROM hub_journal")}
    remote = {row["seq"]: (row["kind"], row["body"]) for row in hub_rows(
        dsn, "SELECT seq, kind, body FROM events WHERE appliance_id = %s", appliance)}
    assert local == remote  # nothing lost, nothing twice (not even under another seq)
    payments = {(r["id"], r["status"], r["receipt"], r["amount"], r["paid_amount"])
                for r in venue.daemon.query("SELECT * FROM payments")}
    assert payments == {(r["local_id"], r["status"], r["receipt"], r["amount"],
                         r["paid_amount"]) for r in hub_rows(
        dsn, "SELECT * FROM payments WHERE appliance_id = %s", appliance)}
    grants = {(r["id"], r["mac"], r["receipt"], r["seconds"])
              for r in venue.daemon.query("SELECT * FROM grants")}
    assert grants == {(r["local_id"], r["mac"], r["receipt"], r["seconds"]) for r in hub_rows(
        dsn, "SELECT * FROM grants WHERE appliance_id = %s", appliance)}
    devices = {r["mac"] for r in venue.daemon.query("SELECT mac FROM devices")}
    assert devices == {r["mac"] for r in hub_rows(
        dsn, "SELECT mac FROM devices WHERE appliance_id = %s", appliance)}


def login(hub: HubProcess) -> tuple[requests.Session, requests.Response]:
    session = requests.Session()
    session.verify = str(hub.cert)
    session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides session.verify
    page = session.get(hub.url + "login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)[1]
    return session, session.post(hub.url + "login", data={
        "csrf": csrf, "username": "operator", "password": PASSWORD})


def a_hub(tmp_path: Path, dsn: str) -> HubProcess:
    return HubProcess(tmp_path / "hub", dsn).start()


def test_a_sale_at_venue_a_shows_at_the_hub_and_in_its_owner_ui(
        tmp_path: Path, hub_dsn: str) -> None:
    hub = a_hub(tmp_path, hub_dsn)
    venues: list[Venue] = []
    try:
        made = hub.cli("owner", "--username", "operator", stdin=PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
        venues = [Venue(tmp_path / "a", hub, "Cafe A"), Venue(tmp_path / "b", hub, "Cafe B")]
        a, b = (venue.start() for venue in venues)
        assert {r["network"] for r in hub_rows(hub_dsn, "SELECT network FROM appliances")} \
            == {NETWORK}

        final = a.buy("AA:BB:CC:16:0A:01")
        assert final["status"] == "completed", final
        paid = a.daemon.query("SELECT * FROM payments")
        assert len(paid) == 1 and paid[0]["status"] == "completed"
        receipt = paid[0]["receipt"]
        assert receipt in {p.get("receipt") for p in a.prompts()}  # settled in A's simulator
        assert not b.prompts()  # B's simulator never saw it
        wait_for(lambda: "AA:BB:CC:16:0A:01" in a.online(), timeout=15,
                 message="the buyer online at A's router")

        at_hub = wait_for(lambda: hub_rows(
            hub_dsn, "SELECT * FROM payments WHERE appliance_id = %s AND status ="
            " 'completed'", a.appliance_id), timeout=20, message="A's payment at the hub")
        assert [(r["local_id"], r["receipt"], r["amount"], r["paid_amount"]) for r in at_hub] \
            == [(paid[0]["id"], receipt, PRICE, paid[0]["paid_amount"])]
        for venue in venues:  # B is heard too (its health row), and has sold nothing
            venue.wait_caught_up()
            assert_exactly_once(venue)
        assert not hub_rows(hub_dsn, "SELECT * FROM payments WHERE appliance_id = %s",
                            b.appliance_id)

        session, page = login(hub)
        assert page.status_code == 200 and "All venues" in page.text
        assert re.search(rf'id="total-today">{PRICE}<', page.text), page.text
        today = dict(re.findall(r'<a href="/venues/\d+">(Cafe [AB])</a></td>\s*<td>[^<]*</td>'
                                r'\s*<td class="today">(\d+)</td>', page.text))
        assert today == {"Cafe A": str(PRICE), "Cafe B": "0"}
        venue_a = session.get(f"{hub.url}venues/{a.appliance_id}")
        assert venue_a.status_code == 200 and receipt in venue_a.text
        assert re.search(rf'id="venue-today">{PRICE}<', venue_a.text)
    finally:
        for venue in venues:
            venue.daemon.close()
        hub.stop()


def test_hub_sigkilled_during_a_burst_of_sales_loses_and_doubles_nothing(
        tmp_path: Path, hub_dsn: str) -> None:
    hub = a_hub(tmp_path, hub_dsn)
    uplink = Uplink(hub).start()
    venue = Venue(tmp_path / "a", hub, "Cafe A", hub_url=uplink.url, batch_events=5)
    try:
        venue.start()
        venue.wait_caught_up()  # its start-up health row: the burst starts from a clean mark
        before = venue.hub_seq()
        uplink.withhold_answer(acked_above=before)  # the burst's first stored batch
        macs = [f"AA:BB:CC:16:0B:{n:02X}" for n in range(10)]
        for mac in macs:
            venue.phone(mac)
        with ThreadPoolExecutor(len(macs)) as pool:
            burst = [pool.submit(venue.buy, mac, PERSON.format(n))
                     for n, mac in enumerate(macs)]
            wait_for(uplink.withheld.is_set, timeout=30, message="a batch of the burst stored")
            held = uplink.withheld_answer
            assert venue.hub_seq() == held["acked"] > venue.recorded_seq()  # stored, not acked
            answered = len(uplink.answers)
            hub.kill()  # SIGKILL while the burst is shipping
            uplink.release()
            statuses = [future.result()["status"] for future in burst]
        assert statuses == ["completed"] * len(macs)  # selling went on without the hub
        wait_for(lambda: set(macs) <= venue.online(), timeout=15,
                 message="the buyers online at the venue's router")
        assert venue.newest_seq() > held["acked"]  # the rest of the burst waits, unshipped
        hub.start()
        venue.wait_caught_up()
        assert_exactly_once(venue)
        resent = [r for r in uplink.batch_answers_after(answered)
                  if r["status"] == 200 and r["first_seq"] <= held["acked"]]
        assert resent and resent[0]["stored"] < resent[0]["last_seq"] - resent[0]["first_seq"] \
            + 1  # the batch the hub had stored came again: answered as a replay or overlap
        paid = sum(r["money"] for r in hub_rows(
            hub_dsn, "SELECT COALESCE(paid_amount, amount) AS money FROM payments"
            " WHERE status = 'completed'"))
        assert paid == PRICE * len(macs)
    finally:
        venue.daemon.close()
        uplink.stop()
        hub.stop()


def test_appliance_sigkilled_mid_batch_resumes_on_its_data_dir_exactly_once(
        tmp_path: Path, hub_dsn: str) -> None:
    hub = a_hub(tmp_path, hub_dsn)
    uplink = Uplink(hub).start()
    venue = Venue(tmp_path / "a", hub, "Cafe A", hub_url=uplink.url, batch_events=10)
    try:
        # A backlog of several hundred journal rows: 100 sales of an earlier day, written by
        # the ledger's SQL while the venue was not yet shipping (4 journal rows each).
        db = Database(venue.daemon.database_path).open()
        try:
            sell(db, 100, start=1000)
        finally:
            db.close()
        assert venue.newest_seq() == 400
        uplink.withhold_answer(acked_above=150)
        venue.start()
        wait_for(uplink.withheld.is_set, timeout=30, message="a batch past seq 150 stored")
        held = uplink.withheld_answer
        assert held["last_seq"] - held["first_seq"] == 9  # a full batch of the backlog
        assert venue.hub_seq() == held["acked"] > venue.recorded_seq()
        answered = len(uplink.answers)
        venue.daemon.kill()  # SIGKILL with the batch stored at the hub, its ack unrecorded
        uplink.release()
        assert venue.newest_seq() > held["acked"]  # the backlog's tail still to ship

        venue.start()  # the same data directory
        final = venue.buy("AA:BB:CC:16:0C:01")  # and it sells as it catches up
        assert final["status"] == "completed", final
        venue.wait_caught_up()
        assert_exactly_once(venue)
        resent = [r for r in uplink.batch_answers_after(answered) if r["status"] == 200]
        assert resent[0]["first_seq"] == held["first_seq"]  # the unacked batch again...
        assert resent[0]["stored"] == 0 and resent[0]["duplicate"]  # ...stored once only
        assert len(hub_rows(hub_dsn, "SELECT * FROM payments WHERE status = 'completed'")) \
            == 101
    finally:
        venue.daemon.close()
        uplink.stop()
        hub.stop()


def test_uplink_cut_venue_keeps_selling_and_catches_up(tmp_path: Path, hub_dsn: str) -> None:
    hub = a_hub(tmp_path, hub_dsn)
    venue = Venue(tmp_path / "a", hub, "Cafe A")
    try:
        venue.start()
        venue.wait_caught_up()
        hub.stop()  # the uplink is down: nothing answers at the hub's address
        macs = [f"AA:BB:CC:16:0D:{n:02X}" for n in range(3)]
        with ThreadPoolExecutor(len(macs)) as pool:
            finals = list(pool.map(venue.buy, macs, [PERSON.format(n) for n in range(3)]))
        assert [final["status"] for final in finals] == ["completed"] * len(macs)
        wait_for(lambda: set(macs) <= venue.online(), timeout=15,
                 message="the buyers online at the venue's router")
        waiting = venue.newest_seq() - venue.recorded_seq()
        assert waiting >= 4 * len(macs)  # payment, settlement, grant, device: all unshipped
        wait_for(lambda: "hub shipper: failing" in venue.daemon.log_text(), timeout=15,
                 message="the shipper to meet the outage")
        status = hotspotd_cli("hub", "status", "--config", str(venue.daemon.config_path)).stdout
        assert f"{waiting} events waiting" in status
        assert venue.hub_seq() < venue.newest_seq()

        hub.start()
        venue.wait_caught_up()
        assert_exactly_once(venue)
        assert "; 0 events waiting" in hotspotd_cli(
            "hub", "status", "--config", str(venue.daemon.config_path)).stdout
    finally:
        venue.daemon.close()
        hub.stop()


def test_hub_status_names_the_outage(tmp_path: Path, hub_dsn: str) -> None:
    hub = a_hub(tmp_path, hub_dsn)
    appliance = ApplianceSide(tmp_path / "a")
    try:
        token = hub.cli("enroll", "--venue", "Cafe A").stdout.strip().splitlines()[-1]
        assert appliance.cli("enroll", "--hub-url", hub.url, "--token", token,
                             "--ca-file", str(hub.cert)).returncode == 0
        appliance.start_shipper()
        wait_for(lambda: "hub shipper: shipping" in appliance.log(), timeout=15,
                 message="the shipper shipping")
        hub.stop()
        sell(appliance.db, 1)  # four events to ship, and nowhere to ship them
        wait_for(lambda: "hub shipper: failing" in appliance.log(), timeout=15,
                 message="the shipper to meet the outage")
        status = appliance.cli("status").stdout
        assert "4 events waiting" in status or "5 events waiting" in status, status
        assert "last error: hub unreachable" in status, status
    finally:
        appliance.close()
        hub.stop()


def test_hub_failed_over_to_a_standby_that_lagged_gets_the_missing_events_again(
        tmp_path: Path, pg_cluster: Any, hub_dsn: str) -> None:
    """docs/SCALING.md: with asynchronous streaming replication, a promoted standby may
    lack the primary's last commits. The standby here is a copy of the hub's database made
    earlier (CREATE DATABASE ... TEMPLATE: what a standby holds that stopped receiving WAL
    then); the hub comes back on it at the same address. To the venue's next batch it
    answers `409 gap`; the venue rewinds and sends the missing events again: every seq once."""
    hub = a_hub(tmp_path, hub_dsn)
    venue = Venue(tmp_path / "a", hub, "Cafe A")
    try:
        venue.start()
        assert venue.buy("AA:BB:CC:16:0E:01")["status"] == "completed"
        venue.wait_caught_up()
        hub.stop()  # a template database must have no sessions
        primary = re.search(r"dbname=(\S+)", hub_dsn)[1]
        with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{primary}_standby" TEMPLATE "{primary}"')
        standby_dsn = pg_cluster.dsn(f"{primary}_standby")
        lagged = venue.hub_seq()
        hub.start()
        assert venue.buy("AA:BB:CC:16:0E:02")["status"] == "completed"
        venue.wait_caught_up()
        assert venue.hub_seq() > lagged  # the primary has commits the standby lacks

        hub.kill()  # the primary is lost; the standby is promoted behind the same address
        hub.config.write_text(hub.config.read_text().replace(hub_dsn, standby_dsn))
        hub.dsn = standby_dsn
        hub.start()
        assert venue.hub_seq() == lagged < venue.recorded_seq()
        # The venue learns of the gap with its next batch: a sale here, at the latest its
        # next health row (health_interval_seconds, 60 s by default).
        assert venue.buy("AA:BB:CC:16:0E:03")["status"] == "completed"
        venue.wait_caught_up()
        assert_exactly_once(venue)
        assert f"the hub asked to resend from {lagged + 1}" in venue.daemon.log_text()
    finally:
        venue.daemon.close()
        hub.stop()


def redeem_at(venue: Venue, mac: str, code: str) -> requests.Response:
    """The portal's voucher form, sent from phone `mac` on the venue's WiFi."""
    phone = venue.phone(mac)
    page = phone.get(venue.daemon.portal_url, timeout=10)
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)[1]
    return phone.post(venue.daemon.portal_url + "voucher", timeout=15, allow_redirects=False,
                      data={"csrf": token, "code": code})


def test_a_voucher_printed_at_a_is_redeemed_at_b_exactly_once(
        tmp_path: Path, hub_dsn: str) -> None:
    from hotspotd.ledger.vouchers import create_batch, format_code

    hub = a_hub(tmp_path, hub_dsn)
    venues: list[Venue] = []
    try:
        venues = [Venue(tmp_path / "a", hub, "Cafe A"), Venue(tmp_path / "b", hub, "Cafe B")]
        a, b = (venue.start() for venue in venues)
        db = Database(a.daemon.database_path).open()
        try:  # the owner of A prints a batch (its plan 1: one hour)
            _, printed = create_batch(db, plan_id=1, count=2, now=time.time())
        finally:
            db.close()
        code = printed[0].code
        wait_for(lambda: hub_rows(hub_dsn, "SELECT 1 FROM vouchers WHERE code = %s", code),
                 timeout=20, message="A's vouchers at the hub")

        taken = redeem_at(b, "AA:BB:CC:16:0B:01", format_code(code))
        assert taken.status_code == 200 and "Voucher accepted" in taken.text, taken.text[:500]
        wait_for(lambda: "AA:BB:CC:16:0B:01" in b.online(), timeout=15,
                 message="the voucher's phone online at B's router")
        again = redeem_at(b, "AA:BB:CC:16:0B:02", code)  # another phone at B
        at_home = redeem_at(a, "AA:BB:CC:16:0A:09", code)  # and at A, its home
        for refused in (again, at_home):
            assert refused.status_code == 400 and "already been used" in refused.text
        assert not {"AA:BB:CC:16:0B:02"} & b.online() and not {"AA:BB:CC:16:0A:09"} & a.online()

        claims = hub_rows(hub_dsn, "SELECT code, mac, claimed_by FROM voucher_claims")
        assert [(c["code"], c["mac"], c["claimed_by"]) for c in claims] == [
            (code, "AA:BB:CC:16:0B:01", b.appliance_id)]  # one redemption, network-wide
        roamed = b.daemon.query("SELECT code, home, mac FROM roamed_vouchers")
        assert [tuple(r.values()) for r in roamed] == [(code, "Cafe A", "AA:BB:CC:16:0B:01")]
        used = wait_for(lambda: a.daemon.query(
            "SELECT status, used_by_mac FROM vouchers WHERE code = ? AND status = 'used'",
            (code,)), timeout=20, message="A marking its voucher used")
        assert used == [{"status": "used", "used_by_mac": "AA:BB:CC:16:0B:01"}]
        for venue in venues:
            venue.wait_caught_up()
            assert_exactly_once(venue)
        assert not hub_rows(hub_dsn, "SELECT * FROM voucher_conflicts")
    finally:
        for venue in venues:
            venue.daemon.close()
        hub.stop()
