"""The real RADIUS server with the real AccessPolicy and database, driven by radclient:
PAP and CHAP MAC logins, data cap and idle timeout from the plan, vouchers as User-Name,
blocked devices, accounting with gigawords, and retransmissions."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator

import pytest
from pyrad import packet as rp
from support.radclient import radclient_path, run_radclient
from support.wait import wait_until

from hotspotd.access.access import (
    BLOCKED,
    DATA_USED_UP,
    NO_TIME,
    VOUCHER_OTHER_DEVICE,
    AccessPolicy,
)
from hotspotd.access.access_view import AccessView
from hotspotd.ledger.grants import grant_time
from hotspotd.ledger.vouchers import create_batch, format_code
from hotspotd.radius.dictionary import load_dictionary
from hotspotd.radius.server import RadiusServer

SECRET = "policy-secret"
MAC_PASSWORD = "mac-pass"
MAC = "AA:BB:CC:00:10:01"
OTHER = "AA:BB:CC:00:10:02"
IP = "10.5.50.41"
CAP = 5 * 2**32 + 1000  # over 4 GiB: needs Mikrotik-Total-Limit-Gigawords


@pytest.fixture(autouse=True)
def _radclient_installed() -> None:
    radclient_path()


@pytest.fixture
def policy(db) -> Iterator[AccessPolicy]:
    # The view is not started: it stays empty, so every decision here is the database's.
    policy = AccessPolicy(db, mac_password=MAC_PASSWORD, interim_interval=60,
                          view=AccessView(db))
    yield policy
    policy.stop()


@pytest.fixture
def server(policy) -> Iterator[RadiusServer]:
    running = RadiusServer(host="127.0.0.1", auth_port=0, acct_port=0,
                           clients={"127.0.0.1": SECRET.encode()}, authorize=policy.authorize,
                           record_accounting=policy.record_accounting,
                           require_message_authenticator=True)
    running.start()
    yield running
    running.stop()


def capped_plan(db, make_plan) -> int:
    plan = make_plan(duration_seconds=3600, rate_limit="2M/5M")
    with db.write() as conn:
        conn.execute("UPDATE plans SET data_cap_bytes = ?, idle_timeout_seconds = 300"
                     " WHERE id = ?", (CAP, plan.id))
    return plan.id


def give(db, plan_id: int | None, mac: str = MAC, seconds: int = 3600) -> None:
    with db.write() as conn:
        grant_time(conn, mac=mac, seconds=seconds, now=time.time(), plan_id=plan_id,
                   rate_limit="2M/5M", source="test")


def auth(server: RadiusServer, user: str, station: str = MAC, **password: str):
    attributes = {"User-Name": user, "Calling-Station-Id": station, "Framed-IP-Address": IP,
                  **{name.replace("_", "-"): value for name, value in password.items()}}
    return run_radclient(server.auth_address[1], "auth", SECRET, attributes)


def test_pap_and_chap_mac_login_with_cap_and_idle_timeout(server, db, make_plan) -> None:
    give(db, capped_plan(db, make_plan))
    for reply in (auth(server, MAC, User_Password=MAC_PASSWORD),
                  auth(server, MAC, CHAP_Password=MAC_PASSWORD)):
        assert reply.code == "Access-Accept", reply.output
        assert 3590 <= int(reply.attributes["Session-Timeout"]) <= 3600
        assert reply.attributes["Idle-Timeout"] == "300"
        assert reply.attributes["Mikrotik-Rate-Limit"] == "2M/5M"
        assert reply.attributes["Mikrotik-Total-Limit"] == "1000"
        assert reply.attributes["Mikrotik-Total-Limit-Gigawords"] == "5"
    wrong = auth(server, MAC, CHAP_Password="guess")
    assert wrong.code == "Access-Reject"


def test_no_time_and_blocked_are_rejected(server, db, make_plan) -> None:
    assert auth(server, MAC, User_Password=MAC_PASSWORD).attributes["Reply-Message"] == NO_TIME
    give(db, None)
    with db.write() as conn:
        conn.execute("INSERT INTO blocked_macs (mac, reason, blocked_by, blocked_at)"
                     " VALUES (?, 'abuse', 'owner', 0)", (MAC,))
    reply = auth(server, MAC, User_Password=MAC_PASSWORD)
    assert (reply.code, reply.attributes["Reply-Message"]) == ("Access-Reject", BLOCKED)


def test_voucher_code_as_user_name_redeems_once_for_the_calling_mac(
        server, policy, db, make_plan, clock) -> None:
    plan = make_plan(duration_seconds=7200)
    _, (voucher,) = create_batch(db, plan_id=plan.id, count=1, now=time.time())
    typed = format_code(voucher.code).lower()
    first = auth(server, typed, CHAP_Password=typed)
    assert first.code == "Access-Accept", first.output
    assert 7190 <= int(first.attributes["Session-Timeout"]) <= 7200
    again = auth(server, voucher.code, User_Password=voucher.code)
    assert again.code == "Access-Accept"  # the same device logs in again by entitlement
    assert 7190 <= int(again.attributes["Session-Timeout"]) <= 7200  # not granted twice
    other = auth(server, voucher.code, station=OTHER, User_Password=voucher.code)
    assert (other.code, other.attributes["Reply-Message"]) == ("Access-Reject",
                                                               VOUCHER_OTHER_DEVICE)
    assert policy.voucher_logins.wait_idle()
    assert db.query_one("SELECT used_by_mac FROM vouchers")["used_by_mac"] == MAC
    assert db.query_one("SELECT COUNT(*) FROM grants")[0] == 1
    assert auth(server, "NOSUCHCODE", User_Password="NOSUCHCODE").code == "Access-Reject"


def test_accounting_with_gigawords_and_sessions(server, db) -> None:
    port = server.acct_address[1]
    base = {"User-Name": MAC, "Calling-Station-Id": MAC, "Framed-IP-Address": IP,
            "Acct-Session-Id": "81a00042"}
    assert run_radclient(port, "acct", SECRET, {**base, "Acct-Status-Type": "Start"}).code \
        == "Accounting-Response"
    assert [tuple(r) for r in db.query("SELECT mac, framed_ip, status FROM radius_sessions")] \
        == [(MAC, IP, "online")]
    interim = {**base, "Acct-Status-Type": "Interim-Update", "Acct-Session-Time": 120,
               "Acct-Input-Octets": 10, "Acct-Input-Gigawords": 2,
               "Acct-Output-Octets": 20, "Acct-Output-Gigawords": 1}
    assert run_radclient(port, "acct", SECRET, interim).code == "Accounting-Response"
    row = db.query_one("SELECT * FROM radius_sessions")
    assert (row["input_octets"], row["output_octets"]) == (2 * 2**32 + 10, 2**32 + 20)
    stop = {**base, "Acct-Status-Type": "Stop", "Acct-Terminate-Cause": "Session-Timeout",
            "Acct-Session-Time": 130}
    assert run_radclient(port, "acct", SECRET, stop).code == "Accounting-Response"
    row = db.query_one("SELECT * FROM radius_sessions")
    assert (row["status"], row["terminate_cause"]) == ("stopped", "Session-Timeout")
    assert row["input_octets"] == 2 * 2**32 + 10  # usage kept by the daemon


def test_retransmission_gets_the_same_answer_without_a_second_redemption(
        server, policy, db, make_plan) -> None:
    plan = make_plan(duration_seconds=600)
    _, (voucher,) = create_batch(db, plan_id=plan.id, count=1, now=time.time())
    request = rp.AuthPacket(code=rp.AccessRequest, secret=SECRET.encode(),
                            dict=load_dictionary())
    request["User-Name"] = voucher.code
    request["User-Password"] = request.PwCrypt(voucher.code)
    request["Calling-Station-Id"] = MAC
    request.add_message_authenticator()
    raw = request.RequestPacket()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        replies = []
        for _ in range(3):
            sock.sendto(raw, server.auth_address)
            replies.append(sock.recvfrom(4096)[0])
    assert replies[0] == replies[1] == replies[2]
    assert replies[0][0] == rp.AccessAccept
    assert server.stats.duplicates == 2
    assert policy.voucher_logins.wait_idle()
    assert db.query_one("SELECT COUNT(*) FROM grants")[0] == 1


def test_access_requests_are_answered_while_a_writer_holds_the_database(
        server, db, make_plan) -> None:
    """Accounting waits for the write lock on its own thread; authentication does not."""
    give(db, None)
    blocker = sqlite3.connect(db.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # a slow writer elsewhere in the daemon
    try:
        acct = threading.Thread(target=run_radclient, args=(
            server.acct_address[1], "acct", SECRET,
            {"User-Name": MAC, "Acct-Status-Type": "Start", "Acct-Session-Id": "s1"}),
            kwargs={"timeout": 3.0})
        acct.start()
        wait_until(lambda: server.stats.requests == 1,  # its thread now waits on the lock
                   message="the Accounting-Request to arrive")
        started = time.monotonic()
        reply = auth(server, MAC, User_Password=MAC_PASSWORD)
        assert reply.code == "Access-Accept"
        assert time.monotonic() - started < 2.0
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    acct.join(10)


def test_in_memory_view_follows_grants_and_blocks_and_falls_back(db, clock) -> None:
    view = AccessView(db, poll_interval=0.05)
    policy = AccessPolicy(db, mac_password=MAC_PASSWORD, interim_interval=60, now=clock,
                          view=view)
    view.start()
    try:
        with db.write() as conn:
            grant_time(conn, mac=MAC, seconds=600, now=clock(), plan_id=None,
                       rate_limit="2M/5M", source="test")
        assert policy.decision_for(MAC).session_timeout == 600  # database, before the view
        wait_until(lambda: view.get(MAC) is not None, timeout=3, message="the view's grant")
        assert policy.decision_for(MAC).accept
        with db.write() as conn:
            conn.execute("INSERT INTO blocked_macs (mac, reason, blocked_by, blocked_at)"
                         " VALUES (?, 'abuse', 'owner', 0)", (MAC,))
            conn.execute("INSERT INTO router_ops (mac, action, next_attempt_at, created_at)"
                         " VALUES (?, 'disconnect', 0, 0)", (MAC,))
        wait_until(lambda: view.get(MAC) is None, timeout=3, message="the view's block")
        assert policy.decision_for(MAC).reply_message == BLOCKED
    finally:
        view.stop()


def test_voucher_first_login_is_answered_while_a_writer_holds_the_database(
        server, policy, db, make_plan) -> None:
    """The redemption is a write; the auth thread answers first and a worker writes it."""
    plan = make_plan(duration_seconds=1800)
    _, (voucher,) = create_batch(db, plan_id=plan.id, count=1, now=time.time())
    blocker = sqlite3.connect(db.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # a slow writer elsewhere in the daemon
    try:
        first = auth(server, voucher.code, User_Password=voucher.code)
        other = auth(server, voucher.code, station=OTHER, User_Password=voucher.code)
        # Both answered while the lock is still held: nothing has been written yet.
        assert db.query_one("SELECT status FROM vouchers")["status"] == "unused"
    finally:
        blocker.execute("ROLLBACK")
    assert first.code == "Access-Accept", first.output
    assert 1790 <= int(first.attributes["Session-Timeout"]) <= 1800
    assert (other.code, other.attributes["Reply-Message"]) == ("Access-Reject",
                                                               VOUCHER_OTHER_DEVICE)
    assert policy.voucher_logins.wait_idle()
    row = db.query_one("SELECT status, used_by_mac FROM vouchers")
    assert (row["status"], row["used_by_mac"]) == ("used", MAC)
    assert db.query_one("SELECT COUNT(*) FROM grants WHERE mac = ?", (MAC,))[0] == 1


def test_voucher_login_that_loses_a_race_to_the_portal_is_taken_back(
        server, policy, db, make_plan) -> None:
    """Accepted on RADIUS, but another device redeemed the code first (its write held the
    lock): the database wins and the router is told to disconnect the device."""
    plan = make_plan(duration_seconds=1800)
    _, (voucher,) = create_batch(db, plan_id=plan.id, count=1, now=time.time())
    blocker = sqlite3.connect(db.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        assert auth(server, voucher.code, User_Password=voucher.code).code == "Access-Accept"
        blocker.execute("UPDATE vouchers SET status = 'used', used_by_mac = ? WHERE id = ?",
                        (OTHER, voucher.id))  # the portal's redemption, committed first
        blocker.execute("COMMIT")
    except BaseException:
        blocker.execute("ROLLBACK")
        raise
    assert policy.voucher_logins.wait_idle(10)
    assert db.query_one("SELECT used_by_mac FROM vouchers")["used_by_mac"] == OTHER
    assert db.query_one("SELECT COUNT(*) FROM grants WHERE mac = ?", (MAC,))[0] == 0
    op = db.query_one("SELECT action FROM router_ops WHERE mac = ? ORDER BY id DESC", (MAC,))
    assert op["action"] == "disconnect"


def test_data_cap_counts_what_was_used_before_a_router_reboot(server, db, make_plan) -> None:
    """The router forgets its counters when it reboots; the daemon does not."""
    give(db, capped_plan(db, make_plan))
    port = server.acct_address[1]
    base = {"User-Name": MAC, "Calling-Station-Id": MAC, "Framed-IP-Address": IP,
            "Acct-Session-Id": "cap-1"}
    used = 2**32 + 300  # 4 GiB and a bit, in and out together
    for status in ("Start", "Interim-Update"):
        counters = {"Acct-Input-Octets": 200, "Acct-Input-Gigawords": 1,
                    "Acct-Output-Octets": 100} if status != "Start" else {}
        assert run_radclient(port, "acct", SECRET, {**base, "Acct-Status-Type": status,
                                                    **counters}).code == "Accounting-Response"
    reboot = {"Acct-Status-Type": "Accounting-On", "NAS-Identifier": "hs1",
              "Acct-Session-Id": "0"}
    assert run_radclient(port, "acct", SECRET, reboot).code == "Accounting-Response"
    reply = auth(server, MAC, User_Password=MAC_PASSWORD)
    assert reply.code == "Access-Accept", reply.output
    left = CAP - used
    assert int(reply.attributes["Mikrotik-Total-Limit-Gigawords"]) == left // 2**32
    assert int(reply.attributes["Mikrotik-Total-Limit"]) == left % 2**32
    spent = {**base, "Acct-Session-Id": "cap-2", "Acct-Status-Type": "Interim-Update",
             "Acct-Input-Gigawords": 4, "Acct-Input-Octets": 700}
    assert run_radclient(port, "acct", SECRET, spent).code == "Accounting-Response"
    refused = auth(server, MAC, User_Password=MAC_PASSWORD)
    assert (refused.code, refused.attributes["Reply-Message"]) == ("Access-Reject",
                                                                   DATA_USED_UP)


def test_stacked_purchases_add_their_caps_and_an_uncapped_one_lifts_it(
        server, db, make_plan) -> None:
    capped = capped_plan(db, make_plan)
    give(db, capped)
    give(db, capped)  # a top-up of the same plan: twice the data
    reply = auth(server, MAC, User_Password=MAC_PASSWORD)
    total = 2 * CAP
    assert int(reply.attributes["Mikrotik-Total-Limit-Gigawords"]) == total // 2**32
    assert int(reply.attributes["Mikrotik-Total-Limit"]) == total % 2**32
    give(db, None)  # time without a cap (e.g. the owner's gift) while it runs: no cap
    reply = auth(server, MAC, User_Password=MAC_PASSWORD)
    assert reply.code == "Access-Accept"
    assert "Mikrotik-Total-Limit" not in reply.attributes


def test_a_plan_edit_does_not_change_the_cap_already_sold(server, db, make_plan) -> None:
    plan = capped_plan(db, make_plan)
    give(db, plan)
    with db.write() as conn:
        conn.execute("UPDATE plans SET data_cap_bytes = 1000, idle_timeout_seconds = 60"
                     " WHERE id = ?", (plan,))
    reply = auth(server, MAC, User_Password=MAC_PASSWORD)
    assert int(reply.attributes["Mikrotik-Total-Limit-Gigawords"]) == CAP // 2**32
    assert reply.attributes["Idle-Timeout"] == "300"
