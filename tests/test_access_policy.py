"""AccessPolicy: RADIUS authorisation from entitlements, and accounting into radius_sessions."""

from __future__ import annotations

import pytest

from hotspotd.access.access import BAD_PASSWORD, NO_TIME, UNKNOWN_USER, AccessPolicy
from hotspotd.access.access_view import AccessView
from hotspotd.ledger.grants import grant_time
from hotspotd.radius.messages import AccessRequest, AccountingRecord

MAC = "AA:BB:CC:DD:EE:01"
MAC_PASSWORD = "shared-mac-secret"
NAS = "10.0.0.1"


@pytest.fixture
def policy(db, clock) -> AccessPolicy:
    # The view is not started: it stays empty, so every decision here is the database's.
    return AccessPolicy(db, mac_password=MAC_PASSWORD, interim_interval=300, now=clock,
                        view=AccessView(db))


def request(user: str = MAC, password: str = MAC_PASSWORD) -> AccessRequest:
    return AccessRequest(user_name=user, calling_station_id=MAC, framed_ip="10.5.50.7",
                         nas_address=NAS, nas_identifier="hs1",
                         password_matches=lambda candidate: candidate == password)


def give_time(db, clock, seconds: int, rate_limit: str | None = "2M/5M", mac: str = MAC):
    with db.write() as conn:
        grant_time(conn, mac=mac, seconds=seconds, now=clock(), plan_id=None,
                   rate_limit=rate_limit, source="test")


def accounting(status: str, *, session_id: str = "81a00001", nas: str = NAS,
               user: str | None = MAC, session_time: int | None = None, octets: int = 0,
               packets: int = 0, cause: str | None = None) -> AccountingRecord:
    return AccountingRecord(
        status_type=status, session_id=session_id, user_name=user, calling_station_id=user,
        framed_ip="10.5.50.7", nas_address=nas, session_time=session_time,
        input_octets=octets, output_octets=2 * octets, input_packets=packets,
        output_packets=2 * packets, terminate_cause=cause, received_at=0.0)


def session(db, session_id: str = "81a00001", nas: str = NAS):
    return db.query_one("SELECT * FROM radius_sessions WHERE session_id = ? AND nas_address = ?",
                        (session_id, nas))


# --- authorisation ---------------------------------------------------------------------------


def test_device_with_time_is_accepted_with_time_left_and_rate_limit(db, clock, policy):
    give_time(db, clock, 3600, rate_limit="2M/5M")
    clock.advance(600)
    decision = policy.authorize(request())
    assert decision.accept
    assert decision.session_timeout == 3000
    assert decision.rate_limit == "2M/5M"


def test_mac_in_another_form_finds_the_same_device(db, clock, policy):
    give_time(db, clock, 3600)
    decision = policy.authorize(request(user="aa-bb-cc-dd-ee-01"))
    assert decision.accept and decision.session_timeout == 3600


def test_device_without_time_is_rejected_with_a_message(db, clock, policy):
    decision = policy.authorize(request())
    assert not decision.accept
    assert decision.reply_message == NO_TIME
    assert decision.session_timeout is None


def test_device_whose_time_ran_out_is_rejected(db, clock, policy):
    give_time(db, clock, 3600)
    clock.advance(3600)
    decision = policy.authorize(request())
    assert (decision.accept, decision.reply_message) == (False, NO_TIME)


def test_wrong_password_is_rejected_even_with_time(db, clock, policy):
    give_time(db, clock, 3600)
    decision = policy.authorize(request(password="guess"))
    assert (decision.accept, decision.reply_message) == (False, BAD_PASSWORD)


def test_user_that_is_not_a_mac_is_rejected(db, clock, policy):
    give_time(db, clock, 3600)
    decision = policy.authorize(request(user="VOUCHER42"))
    assert (decision.accept, decision.reply_message) == (False, UNKNOWN_USER)


# --- accounting ------------------------------------------------------------------------------


def test_start_interim_stop_are_recorded(db, clock, policy):
    started = clock()
    policy.record_accounting(accounting("Start"))
    row = session(db)
    assert (row["status"], row["mac"], row["started_at"]) == ("online", MAC, started)
    clock.advance(300)
    policy.record_accounting(accounting("Interim-Update", session_time=300, octets=1000,
                                        packets=10))
    row = session(db)
    assert (row["status"], row["session_time"], row["input_octets"], row["output_octets"]) == (
        "online", 300, 1000, 2000)
    assert row["started_at"] == started and row["updated_at"] == clock()
    clock.advance(100)
    policy.record_accounting(accounting("Stop", session_time=400, octets=1500, packets=15,
                                        cause="Session-Timeout"))
    row = session(db)
    assert (row["status"], row["stopped_at"], row["terminate_cause"]) == (
        "stopped", clock(), "Session-Timeout")
    assert (row["session_time"], row["input_octets"], row["input_packets"]) == (400, 1500, 15)


def test_counters_never_go_backwards(db, clock, policy):
    policy.record_accounting(accounting("Interim-Update", session_time=600, octets=5000,
                                        packets=50))
    policy.record_accounting(accounting("Interim-Update", session_time=300, octets=1000,
                                        packets=10))  # a late, reordered update
    row = session(db)
    assert (row["session_time"], row["input_octets"], row["output_octets"],
            row["input_packets"], row["output_packets"]) == (600, 5000, 10000, 50, 100)


def test_stop_stays_stopped_after_a_late_interim(db, clock, policy):
    policy.record_accounting(accounting("Start"))
    clock.advance(60)
    policy.record_accounting(accounting("Stop", session_time=60, cause="User-Request"))
    stopped_at = clock()
    clock.advance(5)
    policy.record_accounting(accounting("Interim-Update", session_time=30))
    policy.record_accounting(accounting("Start"))
    row = session(db)
    assert (row["status"], row["stopped_at"], row["session_time"]) == ("stopped", stopped_at, 60)
    assert row["terminate_cause"] == "User-Request"


def test_accounting_updates_the_device_ip(db, clock, policy):
    give_time(db, clock, 3600)
    with db.write() as conn:
        conn.execute("INSERT INTO devices (mac, last_ip, first_seen, last_seen)"
                     " VALUES (?, '10.5.50.2', 0, 0)", (MAC,))
    clock.advance(10)
    policy.record_accounting(accounting("Start"))
    device = db.query_one("SELECT last_ip, last_seen FROM devices WHERE mac = ?", (MAC,))
    assert (device["last_ip"], device["last_seen"]) == ("10.5.50.7", clock())


def test_accounting_on_closes_only_that_nas_sessions(db, clock, policy):
    policy.record_accounting(accounting("Start", session_id="s1"))
    policy.record_accounting(accounting("Start", session_id="s2", user="AA:BB:CC:DD:EE:02"))
    policy.record_accounting(accounting("Start", session_id="s3", nas="10.0.0.2"))
    clock.advance(30)
    policy.record_accounting(accounting("Accounting-On", session_id="boot", user=None))
    for session_id in ("s1", "s2"):
        row = session(db, session_id)
        assert (row["status"], row["stopped_at"], row["terminate_cause"]) == (
            "stopped", clock(), "NAS-Reboot")
    assert session(db, "s3", "10.0.0.2")["status"] == "online"
    assert session(db, "boot") is None  # the reboot notice itself is not a session


def test_accounting_failed_status_does_not_close_the_nas_sessions(db, clock, policy):
    """Acct-Status-Type "Failed" (15, in our dictionary) is not a reboot notice.

    Regression: record_accounting used to treat every status it did not know as
    Accounting-On/Off and close all of the NAS's online sessions.
    """
    policy.record_accounting(accounting("Start", session_id="s1"))
    policy.record_accounting(accounting("Failed", session_id="s9", user="AA:BB:CC:DD:EE:02"))
    assert session(db, "s1")["status"] == "online"
    assert session(db, "s9") is None
