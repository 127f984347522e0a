"""The router converges to the database (money invariant 5), through real sockets: the
in-process appliance with its MikroTik simulator; CoA on top-up, API fallback, the expiry
enforcer, the reconcile both ways, faults switched on at run time."""

from __future__ import annotations

import time
from typing import Any

import pytest
from support.wait import wait_until

from hotspotd.app import Appliance
from hotspotd.ledger.grants import grant_time

MAC = "AA:BB:CC:00:00:01"
IP = "10.5.50.31"
FAST_ROUTER = {"timeout_seconds": 0.5, "coa_timeout_seconds": 0.3,
               "enforce_interval_seconds": 0.3, "reconcile_interval_seconds": 1}


@pytest.fixture
def appliance_config() -> dict[str, dict[str, Any]]:
    return {"router": FAST_ROUTER}


def grant(appliance: Appliance, seconds: int, mac: str = MAC, ip: str = IP,
          rate_limit: str = "1M/2M") -> None:
    with appliance.db.write() as conn:
        grant_time(conn, mac=mac, seconds=seconds, now=appliance.now(), plan_id=None,
                   rate_limit=rate_limit, source="test", ip=ip)
    appliance.outbox.wake()


def active(appliance: Appliance, mac: str = MAC) -> dict[str, str] | None:
    rows = [row for row in appliance.router_simulator.active_hosts()
            if row["mac-address"] == mac]
    return rows[0] if rows else None


def online_in_db(appliance: Appliance, mac: str = MAC) -> bool:
    return appliance.db.query_one("SELECT 1 FROM radius_sessions WHERE mac = ? AND"
                                  " status = 'online'", (mac,)) is not None


def events(appliance: Appliance, kind: str) -> list[str]:
    return [row["detail"] for row in appliance.db.query(
        "SELECT detail FROM events WHERE kind = ? ORDER BY id", (kind,))]


def test_top_up_while_online_extends_by_coa_in_the_same_session(appliance: Appliance) -> None:
    grant(appliance, 600)
    wait_until(lambda: active(appliance) and online_in_db(appliance))
    first = active(appliance)
    grant(appliance, 600, rate_limit="4M/8M")
    sim = appliance.router_simulator
    wait_until(lambda: (sim.session_timeout_of(MAC) or 0) >= 1199)
    assert active(appliance)[".id"] == first[".id"]  # type: ignore[index]  # not re-logged in
    assert sim.rate_limit_of(MAC) == "4M/8M"
    wait_until(lambda: any("extended by CoA" in detail
                           for detail in events(appliance, "router.login")))


def test_coa_without_answer_falls_back_to_the_api(appliance: Appliance) -> None:
    grant(appliance, 600)
    wait_until(lambda: active(appliance) and online_in_db(appliance))
    first = active(appliance)
    appliance.router_simulator.faults.set(drop_coa=1.0)
    grant(appliance, 600)
    sim = appliance.router_simulator
    wait_until(lambda: (sim.session_timeout_of(MAC) or 0) >= 1190)
    assert active(appliance)[".id"] != first[".id"]  # type: ignore[index]
    wait_until(lambda: any("through the API" in detail
                           for detail in events(appliance, "router.login")[1:]))


def test_expired_device_is_disconnected_even_if_the_router_missed_it(
        appliance: Appliance) -> None:
    grant(appliance, 3600)
    wait_until(lambda: active(appliance) and online_in_db(appliance))
    with appliance.db.write() as conn:  # time runs out (or the owner revokes it)
        conn.execute("UPDATE entitlements SET expires_at = ? WHERE mac = ?",
                     (appliance.now(), MAC))
    started = time.monotonic()
    wait_until(lambda: active(appliance) is None)
    assert time.monotonic() - started < 5
    wait_until(lambda: events(appliance, "router.disconnect"))
    assert "Disconnect-Request: ACK" in events(appliance, "router.disconnect")[-1]
    assert appliance.router_simulator.session_timeout_of(MAC) is None


def test_reconcile_logs_in_entitled_devices_after_a_router_reboot(
        appliance: Appliance) -> None:
    grant(appliance, 600)
    wait_until(lambda: active(appliance) and online_in_db(appliance))
    appliance.router_simulator.reboot()
    assert active(appliance) is None
    wait_until(lambda: active(appliance) is not None)
    left = int(active(appliance)["session-time-left"].rstrip("s").split("m")[0])  # type: ignore[index]
    assert left >= 9  # minutes: the time bought, not a fresh 600 s from the reboot on top


def test_reconcile_disconnects_active_devices_without_time(appliance: Appliance) -> None:
    grant(appliance, 600)
    wait_until(lambda: active(appliance) and online_in_db(appliance))
    with appliance.db.write() as conn:  # the database no longer knows of the session
        conn.execute("UPDATE entitlements SET expires_at = 0 WHERE mac = ?", (MAC,))
        conn.execute("DELETE FROM radius_sessions")
    wait_until(lambda: active(appliance) is None)


def test_unreachable_router_delays_the_change_and_never_loses_it(appliance: Appliance) -> None:
    sim = appliance.router_simulator
    sim.faults.set(api_timeout=1.0, drop_coa=1.0)
    grant(appliance, 600)
    wait_until(lambda: appliance.db.query_one(
        "SELECT attempts FROM router_ops WHERE mac = ? AND attempts > 0", (MAC,)))
    assert active(appliance) is None
    sim.faults.clear()
    wait_until(lambda: active(appliance) is not None, timeout=10)


def test_write_silently_not_applied_is_read_back_and_retried(appliance: Appliance) -> None:
    sim = appliance.router_simulator
    sim.faults.set(silent_write=1.0)
    grant(appliance, 600)
    wait_until(lambda: appliance.db.query_one(
        "SELECT 1 FROM router_ops WHERE mac = ? AND last_error LIKE '%not in the active%'",
        (MAC,)))
    sim.faults.clear()
    wait_until(lambda: active(appliance) is not None, timeout=10)


def test_disconnect_enqueued_by_the_owner_is_applied(appliance: Appliance) -> None:
    from hotspotd.ledger.router_ops import enqueue_router_op

    grant(appliance, 600)
    wait_until(lambda: active(appliance) and online_in_db(appliance))
    with appliance.db.write() as conn:
        enqueue_router_op(conn, mac=MAC, ip=None, action="disconnect", now=appliance.now())
    appliance.outbox.wake()
    wait_until(lambda: active(appliance) is None)
    # The outbox marks what it applied: the disconnect leaves the queue, done.
    wait_until(lambda: appliance.outbox.depth() == 0)
    assert appliance.db.query_one(
        "SELECT state FROM router_ops WHERE mac = ? AND action = 'disconnect'",
        (MAC,))[0] == "done"
