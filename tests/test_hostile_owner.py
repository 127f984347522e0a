"""Attacks on the owner's door from the venue WiFi, against the real appliance over HTTP.

The attacker and the honest customer are phones at their own loopback addresses (127.64.x.y),
registered in the MikroTik simulator's host table as real phones are; the owner works from
127.0.0.1 (this machine), or from the management listener when `[admin] host` is set. Each
test shows the attack fails AND an honest customer beside it still buys and gets online.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.admin_http import csrf_of, owner_session
from support.daemon import Daemon
from support.mpesa import fast_appliance, honest_customer_gets_online, portal
from support.phones import daemon_phone
from support.wait import wait_until

from hotspotd.admin.accounts import create_account
from hotspotd.app import Appliance
from hotspotd.cli import main
from hotspotd.mpesa.rejections import record_rejection
from hotspotd.simulators.phones import SimulatedPhone, join_wifi

APPROVES = "254700000000"  # the Daraja simulator approves it by itself
OWNER, PASSWORD = "owner", "a long owner password"
ATTEMPTS = 3  # [admin] login_attempts here: wrong passwords / set-up codes per address
ADMIN = {"login_attempts": ATTEMPTS, "lockout_seconds": 600}


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Appliance]:
    """The demo's situation: the owner UI on the portal's listener, no owner account yet."""
    with fast_appliance(tmp_path, admin=ADMIN) as running:
        yield running


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[Appliance]:
    """The owner UI on the portal's listener (no [admin] host), with an owner account."""
    with fast_appliance(tmp_path, admin=ADMIN,
                        web={"trusted_proxies": ["127.99.0.1"]}) as running:
        create_account(running.db, username=OWNER, password=PASSWORD, now=time.time())
        yield running


@pytest.fixture
def split(tmp_path: Path) -> Iterator[Appliance]:
    """The management side on a listener of its own ([admin] host/port)."""
    with fast_appliance(tmp_path,
                        admin={**ADMIN, "host": "127.0.0.1", "port": 0}) as running:
        create_account(running.db, username=OWNER, password=PASSWORD, now=time.time())
        yield running


def setup_form(session: requests.Session | SimulatedPhone, url: str,
               **fields: str) -> requests.Response:
    """GET the set-up page (for its CSRF token), then POST it with `fields`."""
    page = session.get(url + "setup", timeout=10)
    assert page.status_code == 200, page.text[:300]
    return session.post(url + "setup", timeout=10, data={
        "username": OWNER, "password": PASSWORD, "confirm": PASSWORD,
        "csrf_token": csrf_of(page.text), **fields})


def accounts(appliance: Appliance) -> int:
    return int(appliance.db.query_one("SELECT COUNT(*) FROM admin_accounts")[0])


def test_wifi_client_cannot_create_the_owner_account_without_the_printed_code(
        fresh: Appliance) -> None:
    admin = str(fresh.addresses["admin_url"])
    code = str(fresh.addresses["owner_setup_code"])  # what `hotspotd run` printed
    attacker = join_wifi(fresh.router_simulator, "AA:BB:CC:71:00:01")
    assert setup_form(attacker, admin).status_code == 403  # a private address is no proof
    for guess in ("AAAA-BBBB-CCCC-DDDD", code[:-1] + ("A" if code[-1] != "A" else "B")):
        wrong = setup_form(attacker, admin, setup_code=guess)
        assert wrong.status_code == 403 and "set-up code is wrong" in wrong.text
    locked = setup_form(attacker, admin, setup_code=code)  # even the right one, now
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 500
    assert accounts(fresh) == 0
    stored = fresh.db.query("SELECT code_hash FROM admin_setup_codes")
    assert [row[0] for row in stored] == [
        hashlib.sha256(code.replace("-", "").encode()).hexdigest()]  # kept hashed only
    honest_customer_gets_online(fresh, "AA:BB:CC:71:00:02")
    owner = requests.Session()  # the owner, who read the console, from this machine
    made = setup_form(owner, admin, setup_code=code)
    assert made.url == admin and "Dashboard" in made.text
    again = setup_form(requests.Session(), admin, setup_code=code)  # spent, set-up closed
    assert again.url == admin + "login" and accounts(fresh) == 1


def test_wifi_client_cannot_reach_owner_ui_or_metrics_on_the_portal_listener(
        split: Appliance) -> None:
    attacker = join_wifi(split.router_simulator, "AA:BB:CC:71:00:11")
    bearer = {"Authorization": f"Bearer {split.addresses['metrics_token']}"}
    for path in ("admin/", "admin/login", "admin/setup", "admin/payments", "metrics"):
        assert attacker.get(portal(split) + path, allow_redirects=False).status_code == 404
    assert attacker.post(portal(split) + "admin/login", data={
        "username": OWNER, "password": PASSWORD}).status_code == 404
    assert attacker.get(portal(split) + "metrics", headers=bearer).status_code == 404
    health = attacker.get(portal(split) + "healthz", headers=bearer)
    assert health.json() == {"ok": True, "live": True, "ready": True}
    honest_customer_gets_online(split, "AA:BB:CC:71:00:12")
    admin = str(split.addresses["admin_url"])
    assert not admin.startswith(portal(split))
    owner = owner_session(admin, OWNER, PASSWORD)  # the management listener
    assert "Dashboard" in owner.get(admin, timeout=10).text
    root = admin.removesuffix("admin/")
    metrics = requests.get(root + "metrics", timeout=10)
    assert metrics.status_code == 200 and "hotspotd_purchases_total" in metrics.text
    detail = requests.get(root + "healthz", timeout=10).json()
    assert detail["ready"] is True and "radius" in detail["checks"]


def hammer(url: str, attacker: SimulatedPhone, stop: threading.Event,
           statuses: list[int]) -> None:
    """Wrong owner passwords from the WiFi, as fast as the appliance answers."""
    token = csrf_of(attacker.get(url + "login", timeout=10).text)
    while not stop.is_set():
        response = attacker.post(url + "login", timeout=10, data={
            "username": OWNER, "password": f"guess {len(statuses)}", "csrf_token": token})
        statuses.append(response.status_code)


def test_wifi_client_failing_logins_cannot_lock_the_owner_out(shared: Appliance) -> None:
    admin = str(shared.addresses["admin_url"])
    attacker = join_wifi(shared.router_simulator, "AA:BB:CC:71:00:21")
    stop, statuses = threading.Event(), list[int]()
    worker = threading.Thread(target=hammer, args=(admin, attacker, stop, statuses))
    worker.start()
    try:
        wait_until(lambda: len(statuses) > 20, timeout=30, message="the attacker's guesses")
        started = time.monotonic()
        owner = owner_session(admin, OWNER, PASSWORD)  # from 127.0.0.1, during the hammering
        took = time.monotonic() - started
        assert "Dashboard" in owner.get(admin, timeout=10).text
    finally:
        stop.set()
        worker.join(30)
    assert statuses[:ATTEMPTS] == [401] * ATTEMPTS and set(statuses[ATTEMPTS:]) == {429}
    assert took < 5.0, f"the owner's login took {took:.2f} s while being hammered"
    failures = shared.db.query_one("SELECT COUNT(*) FROM admin_audit WHERE action ="
                                   " 'login.failed'")[0]
    assert failures == ATTEMPTS, "a locked (name, address) pair is not even checked"
    honest_customer_gets_online(shared, "AA:BB:CC:71:00:22")


def test_wifi_client_cannot_read_metrics_or_health_detail(shared: Appliance) -> None:
    attacker = join_wifi(shared.router_simulator, "AA:BB:CC:71:00:31")
    url = portal(shared)
    for headers in ({}, {"Authorization": "Bearer guess"}, {"Authorization": "Basic b3duZXI6"},
                    {"Authorization": f"Basic {shared.addresses['metrics_token']}"}):
        metrics = attacker.get(url + "metrics", headers=headers)
        assert metrics.status_code == 401 and "hotspotd_" not in metrics.text
        health = attacker.get(url + "healthz", headers=headers)
        assert health.json() == {"ok": True, "live": True, "ready": True}, health.text
    honest_customer_gets_online(shared, "AA:BB:CC:71:00:32")
    bearer = {"Authorization": f"Bearer {shared.addresses['metrics_token']}"}
    assert "checks" in requests.get(url + "healthz", headers=bearer, timeout=10).json()
    assert requests.get(url + "metrics", headers=bearer, timeout=10).status_code == 200


def test_metric_labels_carry_no_payment_reference_or_transid(shared: Appliance) -> None:
    """A forged C2B confirmation's TransID (and the checkout ids of real payments) could
    otherwise become label values anyone scraping, or the time series store, keeps."""
    honest_customer_gets_online(shared, "AA:BB:CC:71:00:41")
    record_rejection(shared.db, kind="c2b-confirmation", now=time.time(), channel="default",
                     source="127.64.9.9", reference="ZZFORGED123",
                     reason="Pull Transactions of channel default does not list TransID"
                            " ZZFORGED123 (3 checks over 60 s): not a payment Daraja knows")
    record_rejection(shared.db, kind="stk", now=time.time(), source="127.64.9.9",
                     reason="malformed: 'ws_CO_FORGED_42' is not a CheckoutRequestID")
    bearer = {"Authorization": f"Bearer {shared.addresses['metrics_token']}"}
    text = requests.get(portal(shared) + "metrics", headers=bearer, timeout=10).text
    payments = shared.db.query("SELECT public_id, checkout_request_id, receipt, phone"
                               " FROM payments")
    assert payments
    for row in payments:
        for value in row:
            assert not value or str(value) not in text, value
    for forged in ("ZZFORGED123", "ws_CO_FORGED_42", "127.64.9.9"):
        assert forged not in text
    assert 'reason="not_in_pull"' in text and 'reason="malformed"' in text


def init_no_owner(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    """`hotspotd init --no-owner`: returns the data directory and the code it printed."""
    data = tmp_path / "var"
    assert main(["init", "--config", str(tmp_path / "etc" / "hotspotd.toml"), "--data-dir",
                 str(data), "--no-owner", "--daraja", "simulator", "--router",
                 "simulator"]) == 0
    printed = capsys.readouterr()
    code = printed.err.split("owner set-up code ")[1].split()[0]
    assert code in printed.out and len(code) == 19
    return data, code


def test_first_run_set_up_only_with_the_code_init_or_run_printed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    data, init_code = init_no_owner(tmp_path, capsys)
    daemon = Daemon(tmp_path / "run", {
        "database": {"path": str(data / "hotspotd.sqlite3")}, "admin": ADMIN,
        "security": {"key_file": str(tmp_path / "etc" / "secret.key")}})
    with daemon:
        daemon.seed_plan(name="1 hour", price=20, duration_seconds=3600)
        daemon.start()
        run_code = daemon.runtime["owner_setup_code"]
        log = daemon.log_text()
        assert f"set-up code {run_code}" in log and run_code != init_code
        assert f"enter the one-time set-up code {run_code}" in log  # stderr, not only the log
        admin = daemon.runtime["admin_url"]
        attacker = daemon_phone(daemon, "AA:BB:CC:71:00:51")
        assert setup_form(attacker, admin, setup_code="").status_code == 403
        assert setup_form(attacker, admin, setup_code=init_code[:15] + "2222").status_code \
            == 403
        assert not daemon.query("SELECT 1 FROM admin_accounts")
        customer = daemon_phone(daemon, "AA:BB:CC:71:00:52")
        created = customer.post(daemon.portal_url + "api/purchases",
                                json={"plan_id": 1, "phone": APPROVES})
        assert created.status_code == 202, created.text
        status_url = f"{daemon.portal_url}api/purchases/{created.json()['id']}"
        wait_until(lambda: customer.get(status_url).json()["status"] == "completed",
                   timeout=20, message="the honest purchase")
        made = setup_form(requests.Session(), admin, setup_code=init_code)  # init's still works
        assert made.url == admin and "Dashboard" in made.text
        assert daemon.query("SELECT username, role FROM admin_accounts") == [
            {"username": OWNER, "role": "owner"}]
        assert not daemon.query("SELECT 1 FROM admin_setup_codes WHERE used_at IS NULL")
