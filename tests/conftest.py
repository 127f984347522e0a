"""Shared fixtures, as flaskr's tests have them.

Unit level: `db` (a fresh SQLite database), `clock` (fake time), `make_plan`.
Whole appliance, one per test: `appliance` (running in-process on loopback, ports 0, demo
plans, fast settlement: support.mpesa.FAST), `portal` (its URL), `phone` (a phone on its
simulated WiFi), `owner` (an owner account, logged in), and `wait_until`.

A test changes the appliance's configuration with a marker, a module with a fixture:

    @pytest.mark.appliance(web={"trusted_proxies": ["127.99.0.1"]})
    def test_x(appliance): ...

    @pytest.fixture
    def appliance_config() -> dict[str, dict[str, Any]]:
        return {"portal": {"voucher_attempts": 3}}

A module may override `appliance` with scope="module" only where it says why in a comment
(a browser or a FreeRADIUS process that is slow to start, tests that only read); its tests
must not depend on each other's order.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.admin_http import OWNER, add_account, owner_session
from support.mpesa import fast_appliance
from support.phones import phone_for
from support.wait import wait_until as _wait_until

from hotspotd.app import Appliance
from hotspotd.ledger.plans import Plan, create_plan
from hotspotd.simulators.phones import SimulatedPhone
from hotspotd.store.db import Database

START = 1_700_000_000.0


class FakeClock:
    """Mutable fake time: pass the instance wherever a `now=` callable is taken."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "t.sqlite3").open()
    yield database
    database.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_plan(db: Database, clock: FakeClock) -> Callable[..., Plan]:
    """`make_plan(price=20, duration_seconds=3600, rate_limit="2M/5M")` → a stored Plan."""

    def factory(*, name: str = "1 hour", price: int = 20, duration_seconds: int = 3600,
                rate_limit: str | None = "2M/5M") -> Plan:
        with db.write() as conn:
            return create_plan(conn, name=name, price=price, duration_seconds=duration_seconds,
                               rate_limit=rate_limit, now=clock())

    return factory


# -- a running appliance per test ------------------------------------------------------------

def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "appliance(**sections): configuration sections for this"
                                       " test's `appliance` (over `appliance_config`)")
    config.addinivalue_line("markers", "no_accounts: the test makes the owner UI's first"
                                       " account itself (test_admin_security)")


@pytest.fixture
def appliance_config() -> dict[str, dict[str, Any]]:
    """Configuration sections over support.mpesa.FAST; a module overrides this fixture."""
    return {}


@pytest.fixture
def appliance(request: pytest.FixtureRequest, tmp_path: Path,
              appliance_config: dict[str, dict[str, Any]]) -> Iterator[Appliance]:
    """The whole appliance running in-process for this test (own data directory)."""
    sections = {name: dict(values) for name, values in appliance_config.items()}
    marker = request.node.get_closest_marker("appliance")
    for name, values in (marker.kwargs if marker else {}).items():
        sections.setdefault(name, {}).update(values)
    with fast_appliance(tmp_path / "appliance", **sections) as running:
        yield running


@pytest.fixture
def portal(appliance: Appliance) -> str:
    """The portal's URL, `http://127.0.0.1:PORT/`."""
    return str(appliance.addresses["portal_url"])


_macs = itertools.count(1)


@pytest.fixture
def phone(appliance: Appliance) -> Callable[..., SimulatedPhone]:
    """`phone("AA:BB:CC:00:00:07")`: the phone with that MAC on the appliance's WiFi (the
    same phone at every call); `phone()`: a phone with a MAC of its own."""

    def factory(mac: str | None = None) -> SimulatedPhone:
        if mac is None:
            number = next(_macs)
            mac = f"02:00:00:{number >> 16 & 255:02X}:{number >> 8 & 255:02X}:{number & 255:02X}"
        return phone_for(appliance, mac)

    return factory


@pytest.fixture
def owner(appliance: Appliance, portal: str) -> requests.Session:
    """A session logged in to the owner UI (`portal + "admin/"`) as support.admin_http.OWNER."""
    add_account(appliance.db, OWNER)
    return owner_session(portal + "admin/", *OWNER)


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    """support.wait.wait_until: `wait_until(check, timeout=10, message="...")`."""
    return _wait_until
