"""Shared fixtures: a fresh SQLite database per test, a fake clock, a plan factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hotspotd.ledger.plans import Plan, create_plan
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
