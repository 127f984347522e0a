"""The owner UI's locks, through the real HTTP server: no owner route without a session,
CSRF on every change, lockout per (account, address), read-only cashiers, set-up only with
the printed one-time code, no secret in any answer or log line."""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support import admin_http
from support.admin_http import add_owner_and_cashier, csrf_of, owner_session
from support.phones import phone_for

from hotspotd.admin.options import AdminOptions
from hotspotd.admin.setup_codes import WrongSetupCode, create_first_owner, issue_setup_code
from hotspotd.app import Appliance
from hotspotd.daraja.sources import SourcePolicy
from hotspotd.simulators.phones import SimulatedPhone
from hotspotd.store.db import Database
from hotspotd.web import create_app
from hotspotd.web.context import WebContext

OWNER, PASSWORD = admin_http.OWNER  # the accounts owner_session logs in with by default
CASHIER, CASHIER_PASSWORD = admin_http.CASHIER


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    """Every log line of the test, the appliance's start included."""
    handler = LogCapture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)


@pytest.fixture
def appliance_config() -> dict[str, dict[str, object]]:
    return {"admin": {"login_attempts": 3, "lockout_seconds": 600}}


@pytest.fixture
def appliance(logs: LogCapture, appliance: Appliance,
              request: pytest.FixtureRequest) -> Appliance:
    """conftest's appliance per test, its logs captured from the start, with an owner and a
    cashier account unless the test is marked `no_accounts` (it makes the first one)."""
    if request.node.get_closest_marker("no_accounts") is None:
        add_owner_and_cashier(appliance.db)
    return appliance


@pytest.fixture
def base(appliance: Appliance) -> str:
    return appliance.addresses["portal_url"] + "admin/"


login = owner_session  # login(base, username, password): a logged-in session, asserted


@pytest.mark.no_accounts
def test_first_visit_sets_up_the_owner_with_the_printed_code(appliance: Appliance,
                                                             base: str) -> None:
    code = appliance.addresses["owner_setup_code"]  # printed at start (runtime.json too)
    session = requests.Session()
    first = session.get(base, timeout=5)
    assert first.url == base + "setup" and "create the owner account" in first.text
    token = csrf_of(first.text)
    form = {"username": OWNER, "password": PASSWORD, "confirm": PASSWORD, "csrf_token": token}
    for wrong in ({}, {"setup_code": "AAAA-BBBB-CCCC-DDDD"}):  # 2 of the 3 allowed
        refused = session.post(base + "setup", timeout=5, data={**form, **wrong})
        assert refused.status_code == 403 and "set-up code is wrong" in refused.text
    assert appliance.db.query_one("SELECT COUNT(*) FROM admin_accounts")[0] == 0
    weak = session.post(base + "setup", timeout=5, data={
        **form, "password": "short", "confirm": "short", "setup_code": code})
    assert weak.status_code == 400 and "at least 10" in weak.text  # the code is not spent
    made = session.post(base + "setup", timeout=10, data={**form, "setup_code": code.lower()})
    assert made.url == base and "Dashboard" in made.text
    # Once an owner exists, set-up is closed for good.
    again = requests.get(base + "setup", timeout=5)
    assert again.url == base + "login"


def test_setup_needs_the_code_from_every_address(appliance: Appliance, tmp_path: Path) -> None:
    """A private or loopback source address proves nothing: customers have private ones."""
    db = Database(tmp_path / "fresh.sqlite3").open()
    app = create_app(context_for(appliance, db))
    code = issue_setup_code(db, now=time.time(), hours=1, issued_by="test")
    for address in ("127.0.0.1", "10.0.0.9", "192.168.88.10", "41.90.64.5"):
        client = app.test_client()
        page = client.get("/admin/setup", environ_base={"REMOTE_ADDR": address})
        assert page.status_code == 200
        form = {"username": OWNER, "password": PASSWORD, "confirm": PASSWORD,
                "csrf_token": csrf_of(page.get_data(as_text=True))}
        refused = client.post("/admin/setup", data=form, environ_base={"REMOTE_ADDR": address})
        assert refused.status_code == 403, address
    assert db.query_one("SELECT COUNT(*) FROM admin_accounts")[0] == 0
    client = app.test_client()
    page = client.get("/admin/setup", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    made = client.post("/admin/setup", environ_base={"REMOTE_ADDR": "10.0.0.9"}, data={
        "username": OWNER, "password": PASSWORD, "confirm": PASSWORD, "setup_code": code,
        "csrf_token": csrf_of(page.get_data(as_text=True))})
    assert made.status_code == 303 and db.query_one(
        "SELECT COUNT(*) FROM admin_accounts WHERE role = 'owner'")[0] == 1
    db.close()


def context_for(appliance: Appliance, db: Database) -> WebContext:
    return dataclasses.replace(appliance.web_context, db=db, callback_token="t",
                               web_sources=SourcePolicy(), admin=AdminOptions())


def admin_rules(appliance: Appliance, tmp_path: Path) -> list[tuple[str, str]]:
    db = Database(tmp_path / "rules.sqlite3").open()
    app = create_app(context_for(appliance, db))
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin") or rule.endpoint in ("admin.login", "admin.setup"):
            continue
        path = re.sub(r"<(?:int:)?(\w+)>", lambda m: "1" if "int:" in m[0] else "x", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, path))
    db.close()
    return found


def test_every_owner_route_refuses_without_a_session(
        appliance: Appliance, base: str, tmp_path: Path) -> None:
    rules = admin_rules(appliance, tmp_path)
    assert len(rules) >= 27, rules
    for new_route in (("POST", "/admin/settings/edit/x"), ("POST", "/admin/settings/channels"),
                      ("GET", "/admin/settings/self-test")):  # settings editing (issue 6)
        assert new_route in rules
    root = appliance.addresses["portal_url"].rstrip("/")
    anonymous = requests.Session()
    token = csrf_of(anonymous.get(base + "login", timeout=5).text)  # a session, no account
    for method, path in rules:
        for session, data in ((requests.Session(), {}), (anonymous, {"csrf_token": token})):
            response = session.request(method, root + path, data=data, timeout=5,
                                       allow_redirects=False)
            if method == "GET":
                assert response.status_code == 302, (method, path)
                assert response.headers["Location"].startswith("/admin/login"), path
            else:
                assert response.status_code in (401, 403), (method, path, response.status_code)
            assert "KES" not in response.text and "2547" not in response.text


def test_a_portal_session_cannot_reach_owner_data(appliance: Appliance, base: str) -> None:
    portal = phone_for(appliance, "AA:BB:CC:00:06:01").session  # a customer's browser
    assert portal.get(appliance.addresses["portal_url"], timeout=5).status_code == 200
    assert portal.cookies, "the portal sets its own cookie"
    response = portal.get(base + "payments", timeout=5, allow_redirects=False)
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    owner = login(base)
    cookie = next(c for c in owner.cookies if c.name == "hotspotd_admin")
    assert cookie.path == "/admin" and cookie.has_nonstandard_attr("HttpOnly")


def test_session_cookie_is_signed_httponly_samesite(base: str) -> None:
    session = requests.Session()
    token = csrf_of(session.get(base + "login", timeout=5).text)
    response = session.post(base + "login", timeout=10, allow_redirects=False, data={
        "username": OWNER, "password": PASSWORD, "csrf_token": token})
    header = response.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/admin" in header
    forged = requests.Session()
    forged.cookies.set("hotspotd_admin", "eyJhY2NvdW50X2lkIjoxfQ.forged.sig", path="/admin")
    assert forged.get(base + "payments", timeout=5, allow_redirects=False).status_code == 302


def test_csrf_token_is_required_for_every_change(appliance: Appliance, base: str) -> None:
    owner = login(base)
    plans_before = appliance.db.query_one("SELECT COUNT(*) FROM plans")[0]
    form = {"name": "CSRF plan", "price": "5", "minutes": "5"}
    assert owner.post(base + "plans", data=form, timeout=5).status_code == 403
    assert owner.post(base + "plans", data={**form, "csrf_token": "wrong"},
                      timeout=5).status_code == 403
    assert appliance.db.query_one("SELECT COUNT(*) FROM plans")[0] == plans_before
    token = csrf_of(owner.get(base + "plans", timeout=5).text)
    made = owner.post(base + "plans", data={**form, "csrf_token": token}, timeout=5)
    assert made.status_code == 200 and "CSRF plan" in made.text
    audit = appliance.db.query_one("SELECT * FROM admin_audit WHERE action = 'plan.create'")
    assert audit["username"] == OWNER and '"price": 5' in audit["after"]


def test_cashier_can_look_but_not_change(appliance: Appliance, base: str) -> None:
    cashier = login(base, CASHIER, CASHIER_PASSWORD)
    page = cashier.get(base + "plans", timeout=5)
    assert page.status_code == 200 and "Save" not in page.text
    token = csrf_of(page.text)
    refused = cashier.post(base + "plans", timeout=5, data={
        "csrf_token": token, "name": "Cashier plan", "price": "5", "minutes": "5"})
    assert refused.status_code == 403
    assert appliance.db.query_one("SELECT 1 FROM plans WHERE name = 'Cashier plan'") is None


def test_wrong_passwords_lock_the_username_out_from_that_address_only(
        appliance: Appliance, base: str) -> None:
    session = requests.Session()
    token = csrf_of(session.get(base + "login", timeout=5).text)
    for _ in range(3):
        wrong = session.post(base + "login", timeout=10, data={
            "username": CASHIER, "password": "not it at all", "csrf_token": token})
        assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
    locked = session.post(base + "login", timeout=10, data={
        "username": CASHIER, "password": CASHIER_PASSWORD, "csrf_token": token})
    assert locked.status_code == 429 and "Too many wrong passwords" in locked.text
    assert int(locked.headers["Retry-After"]) > 500
    failures = appliance.db.query_one("SELECT COUNT(*) FROM admin_audit WHERE"
                                      " action = 'login.failed' AND username = ?", (CASHIER,))
    assert failures[0] >= 3
    elsewhere = SimulatedPhone("AA:BB:CC:00:06:77", "127.0.6.77").session  # another address
    token = csrf_of(elsewhere.get(base + "login", timeout=5).text)
    done = elsewhere.post(base + "login", timeout=10, data={
        "username": CASHIER, "password": CASHIER_PASSWORD, "csrf_token": token})
    assert done.url == base and "Dashboard" in done.text


def test_secrets_never_appear_in_any_response_or_log(
        appliance: Appliance, base: str, logs: LogCapture) -> None:
    config = appliance.config
    secrets = [config.radius.secret, config.radius.mac_password, config.router.password,
               config.daraja.consumer_key, config.daraja.consumer_secret, config.daraja.passkey,
               config.web.callback_token, PASSWORD, CASHIER_PASSWORD]
    hashes = [row[0] for row in appliance.db.query("SELECT password_hash FROM admin_accounts")]
    owner = login(base)
    pages = ["", "payments", "unmatched", "devices", "plans", "vouchers", "exports", "settings",
             "settings?channel=x", "settings/self-test", "audit", "exports/payments.csv",
             "exports/sessions.csv"]
    bodies = [owner.get(base + page, timeout=10).text for page in pages]
    bodies.append(requests.get(appliance.addresses["portal_url"], timeout=5).text)
    for body in bodies:
        for secret in [*secrets, *hashes]:
            assert secret and secret not in body
    for line in logs.lines:
        for secret in [*secrets, *hashes]:
            assert secret not in line


def test_logout_ends_the_session_even_for_a_copied_cookie(base: str) -> None:
    owner = login(base)
    thief = requests.Session()
    for cookie in owner.cookies:
        thief.cookies.set(cookie.name, cookie.value, path=cookie.path)
    assert thief.get(base + "payments", timeout=5, allow_redirects=False).status_code == 200
    token = csrf_of(owner.get(base + "payments", timeout=5).text)
    owner.post(base + "logout", data={"csrf_token": token}, timeout=5)
    assert thief.get(base + "payments", timeout=5, allow_redirects=False).status_code == 302


def test_session_cookie_is_secure_when_served_over_https(
        appliance: Appliance, tmp_path: Path) -> None:
    """https seen by the browser: an https [web] public_url, or X-Forwarded-Proto from one of
    [web] trusted_proxies (anyone else's header is not believed)."""
    db = Database(tmp_path / "https.sqlite3").open()
    proxied = dataclasses.replace(context_for(appliance, db),
                                  web_sources=SourcePolicy.from_config((), ["127.99.0.1"]))

    def cookie(context: WebContext, address: str, **headers: str) -> str:
        response = create_app(context).test_client().get(
            "/admin/setup", headers=headers, environ_base={"REMOTE_ADDR": address})
        return response.headers["Set-Cookie"]

    https = {"X-Forwarded-Proto": "https"}
    assert "; Secure" in cookie(proxied, "127.99.0.1", **https)
    assert "; Secure" not in cookie(proxied, "127.99.0.1")
    assert "; Secure" not in cookie(proxied, "10.0.0.9", **https)  # not our proxy
    public = dataclasses.replace(context_for(appliance, db),
                                 admin=AdminOptions(public_url="https://hotspot.example.com"))
    assert "; Secure" in cookie(public, "10.0.0.9")
    db.close()


def test_setup_codes_expire_work_once_and_are_kept_hashed(tmp_path: Path) -> None:
    db = Database(tmp_path / "codes.sqlite3").open()
    now = time.time()
    old = issue_setup_code(db, now=now - 7200, hours=1, issued_by="init")  # expired an hour ago
    code = issue_setup_code(db, now=now, hours=1, issued_by="start")
    stored = " ".join(row[0] for row in db.query("SELECT code_hash FROM admin_setup_codes"))
    assert code.replace("-", "") not in stored and code not in stored
    with pytest.raises(WrongSetupCode):
        create_first_owner(db, code=old, username=OWNER, password=PASSWORD, now=now)
    with pytest.raises(WrongSetupCode):
        create_first_owner(db, code=code, username=OWNER, password=PASSWORD, now=now + 3601)
    made = create_first_owner(db, code=f" {code.lower()} ", username=OWNER, password=PASSWORD,
                              now=now)
    assert made.role == "owner"
    with pytest.raises(WrongSetupCode):  # spent (and set-up is over)
        create_first_owner(db, code=code, username="second", password=PASSWORD, now=now)
    db.close()
