"""Fixtures for the hub's tests: one PostgreSQL cluster per session, one database per test.

Import the fixtures into a test module (`from support.hub import pg_cluster, hub_dsn`).

The cluster is session-scoped because initdb + start costs about a second and the hub's
tests are many; isolation comes from a fresh database per test (CREATE DATABASE takes a
few milliseconds), so no test sees another's rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from support.postgres import REQUIRE_ENV, PostgresCluster, unavailable_reason


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}")
        pytest.skip(reason)
    cluster = PostgresCluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def hub_dsn(pg_cluster: PostgresCluster) -> str:
    """The DSN of a new, empty database on the session's cluster."""
    return pg_cluster.create_database()
