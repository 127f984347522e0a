"""The hub's batch protocol over HTTP (Flask's client on the real app and PostgreSQL):
enrolment, revocation, and every refused or deduplicated batch with its reason."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from support import hub as hub_fixtures

from hotspotd.hub.config import HubConfig
from hotspotd.hub.enrolment import create_venue, revoke
from hotspotd.hub.pgstore import HubStore
from hotspotd.hub.protocol import digest, make_batch
from hotspotd.hub.web import create_hub_app

pg_cluster, hub_dsn = hub_fixtures.pg_cluster, hub_fixtures.hub_dsn  # fixtures


@pytest.fixture
def store(hub_dsn: str) -> Iterator[HubStore]:
    hub_store = HubStore(hub_dsn).open()
    yield hub_store
    hub_store.close()


@pytest.fixture
def client(store: HubStore, hub_dsn: str) -> FlaskClient:
    app = create_hub_app(store, HubConfig(dsn=hub_dsn, insecure_http=True, host="127.0.0.1"),
                         secure_cookies=False)
    return app.test_client()


def enrol(client: FlaskClient, store: HubStore, venue: str = "Cafe A") -> tuple[int, str]:
    token = create_venue(store, venue, "net1")
    answer = client.post("/v1/enroll", json={"token": token})
    assert answer.status_code == 200, answer.json
    return answer.json["appliance"], answer.json["key"]


def events(first: int, last: int) -> list[dict[str, Any]]:
    return [{"seq": seq, "at": 1.0, "kind": "device", "entity_id": f"M{seq}",
             "body": {"mac": f"M{seq}", "first_seen": 1.0}} for seq in range(first, last + 1)]


def post(client: FlaskClient, key: str, batch: dict[str, Any]) -> Any:
    return client.post("/v1/batches", json=batch, headers={"Authorization": f"Bearer {key}"})


def stored_seqs(store: HubStore, appliance: int) -> list[int]:
    with store.connection() as conn:
        return [row["seq"] for row in conn.execute(
            "SELECT seq FROM events WHERE appliance_id = %s ORDER BY seq", (appliance,))]


def test_a_token_enrols_once_and_only_a_hash_is_kept(client: FlaskClient,
                                                     store: HubStore) -> None:
    token = create_venue(store, "Cafe A")
    first = client.post("/v1/enroll", json={"token": token})
    again = client.post("/v1/enroll", json={"token": token})
    assert first.status_code == 200 and first.json["key"].startswith("hub-key-")
    assert again.status_code == 403 and again.json["error"] == "token_used"
    assert client.post("/v1/enroll", json={"token": "guess"}).json["error"] == "unknown_token"
    with store.connection() as conn:
        dump = str(conn.execute("SELECT * FROM appliances").fetchall()) + str(
            conn.execute("SELECT * FROM enrolment_tokens").fetchall())
    assert first.json["key"] not in dump and token not in dump


def test_an_expired_token_is_refused(client: FlaskClient, store: HubStore) -> None:
    token = create_venue(store, "Cafe A", now=lambda: 1_000.0)  # expired a day after 1970
    answer = client.post("/v1/enroll", json={"token": token})
    assert answer.status_code == 403 and answer.json["error"] == "token_expired"


def test_batches_are_stored_once_in_order(client: FlaskClient, store: HubStore) -> None:
    appliance, key = enrol(client, store)
    assert post(client, key, make_batch(appliance, events(1, 3))).json == {
        "acked": 3, "duplicate": False, "stored": 3}
    assert post(client, key, make_batch(appliance, events(4, 5))).json["acked"] == 5
    assert stored_seqs(store, appliance) == [1, 2, 3, 4, 5]


def test_a_replayed_batch_is_acknowledged_and_stored_nothing_twice(
        client: FlaskClient, store: HubStore) -> None:
    appliance, key = enrol(client, store)
    post(client, key, make_batch(appliance, events(1, 3)))
    replay = post(client, key, make_batch(appliance, events(1, 3)))
    assert replay.status_code == 200
    assert replay.json == {"acked": 3, "duplicate": True, "stored": 0}
    assert stored_seqs(store, appliance) == [1, 2, 3]


def test_an_overlapping_batch_stores_only_its_new_tail(client: FlaskClient,
                                                       store: HubStore) -> None:
    appliance, key = enrol(client, store)
    post(client, key, make_batch(appliance, events(1, 3)))
    answer = post(client, key, make_batch(appliance, events(2, 6)))
    assert answer.json == {"acked": 6, "duplicate": False, "stored": 3}
    assert stored_seqs(store, appliance) == [1, 2, 3, 4, 5, 6]


def test_a_gap_is_refused_with_where_the_hub_stands(client: FlaskClient,
                                                    store: HubStore) -> None:
    appliance, key = enrol(client, store)
    post(client, key, make_batch(appliance, events(1, 3)))
    answer = post(client, key, make_batch(appliance, events(6, 8)))
    assert answer.status_code == 409
    assert answer.json["error"] == "gap" and answer.json["acked"] == 3
    assert "resend from 4" in answer.json["reason"]
    assert stored_seqs(store, appliance) == [1, 2, 3]


def test_a_bad_digest_is_refused_and_nothing_stored(client: FlaskClient,
                                                    store: HubStore) -> None:
    appliance, key = enrol(client, store)
    batch = make_batch(appliance, events(1, 3))
    batch["events"][1]["body"]["mac"] = "tampered"
    answer = post(client, key, batch)
    assert answer.status_code == 400 and answer.json["error"] == "digest_mismatch"
    assert "digest" in answer.json["reason"]
    assert stored_seqs(store, appliance) == []


@pytest.mark.parametrize("seqs", [[1, 2, 4], [1, 3, 2], [1, 1, 2]])
def test_non_contiguous_seqs_are_refused(client: FlaskClient, store: HubStore,
                                         seqs: list[int]) -> None:
    appliance, key = enrol(client, store)
    batch_events = [events(seq, seq)[0] for seq in seqs]
    batch = {"appliance": appliance, "first_seq": seqs[0], "last_seq": seqs[-1],
             "events": batch_events, "digest": digest(batch_events)}
    answer = post(client, key, batch)
    assert answer.status_code == 400 and answer.json["error"] == "not_contiguous"
    assert stored_seqs(store, appliance) == []


def test_an_event_the_projection_cannot_read_is_refused(client: FlaskClient,
                                                        store: HubStore) -> None:
    appliance, key = enrol(client, store)
    bad = [{"seq": 1, "at": 1.0, "kind": "payment", "entity_id": 1, "body": {"id": 1}}]
    answer = post(client, key, make_batch(appliance, bad))
    assert answer.status_code == 400 and answer.json["error"] == "bad_event"
    assert stored_seqs(store, appliance) == []


def test_keys_unknown_missing_revoked_or_of_another_appliance_are_refused(
        client: FlaskClient, store: HubStore) -> None:
    appliance, key = enrol(client, store)
    other, other_key = enrol(client, store, "Cafe B")
    batch = make_batch(appliance, events(1, 1))
    assert client.post("/v1/batches", json=batch).json["error"] == "no_key"
    assert post(client, "hub-key-guess", batch).status_code == 401
    assert post(client, other_key, batch).json["error"] == "wrong_appliance"
    revoke(store, "Cafe A", "stolen box")
    refused = post(client, key, batch)
    assert refused.status_code == 403 and refused.json["error"] == "revoked"
    assert "stolen box" in refused.json["reason"]
    assert stored_seqs(store, appliance) == []
    assert post(client, other_key, make_batch(other, events(1, 1))).status_code == 200


def test_oversized_batches_are_refused(client: FlaskClient, store: HubStore) -> None:
    appliance, key = enrol(client, store)
    too_many = post(client, key, make_batch(appliance, events(1, 501)))
    assert too_many.status_code == 400 and too_many.json["error"] == "too_many_events"
    huge = client.post("/v1/batches", data=b"x" * (1024 * 1024 + 1),
                       headers={"Authorization": f"Bearer {key}",
                                "Content-Type": "application/json"})
    assert huge.status_code == 413


def test_a_resent_seq_with_other_content_is_refused_as_diverged(client: FlaskClient,
                                                                store: HubStore) -> None:
    """An appliance restored from a backup numbers new events with seqs the hub has."""
    appliance, key = enrol(client, store)
    post(client, key, make_batch(appliance, events(1, 3)))
    other = events(2, 5)
    other[0]["body"]["mac"] = "a different event"
    answer = post(client, key, make_batch(appliance, other))
    assert answer.status_code == 409
    assert answer.json["error"] == "diverged" and answer.json["acked"] == 3
    assert stored_seqs(store, appliance) == [1, 2, 3]


def test_a_second_token_cannot_replace_an_enrolled_key(client: FlaskClient,
                                                       store: HubStore) -> None:
    first, second = create_venue(store, "Cafe A"), create_venue(store, "Cafe A")
    assert client.post("/v1/enroll", json={"token": first}).status_code == 200
    answer = client.post("/v1/enroll", json={"token": second})
    assert answer.status_code == 403 and answer.json["error"] == "already_enrolled"
