"""`/healthz` (liveness, readiness with reasons) and `/metrics` (Prometheus) on a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from support.appliance import running_appliance
from support.mpesa import accepted, buy, wait_final
from support.wait import wait_until

from hotspotd.app import Appliance

MAC = "AA:BB:CC:00:07:01"


def bearer(appliance: Appliance) -> dict[str, str]:
    """The management side's token: /metrics and /healthz's detail on the portal listener."""
    return {"Authorization": f"Bearer {appliance.addresses['metrics_token']}"}


def healthz(appliance: Appliance, query: str = "") -> requests.Response:
    return requests.get(appliance.addresses["portal_url"] + "healthz" + query,
                        headers=bearer(appliance), timeout=5)


def scrape(appliance: Appliance) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = requests.get(appliance.addresses["portal_url"] + "metrics",
                            headers=bearer(appliance), timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        assert family.name.startswith("hotspotd_"), family.name
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = \
                sample.value
    return samples


def bought(appliance: Appliance, number: str) -> dict[str, Any]:
    """MAC buys plan 1 for `number`; the purchase's final status."""
    return wait_final(appliance, accepted(buy(appliance, number, MAC)))


def test_healthz_ready_with_every_check(appliance: Appliance) -> None:
    response = healthz(appliance)
    body = response.json()
    assert response.status_code == 200, body
    assert body["ok"] is body["live"] is body["ready"] is True
    assert body["reasons"] == []
    assert {"database", "radius", "router_outbox", "scheduler", "router", "disk"} <= \
        set(body["checks"])
    live = requests.get(appliance.addresses["portal_url"] + "healthz?live", timeout=5)
    assert live.status_code == 200 and live.json() == {"ok": True, "live": True}
    anyone = requests.get(appliance.addresses["portal_url"] + "healthz", timeout=5)
    assert anyone.status_code == 200
    assert anyone.json() == {"ok": True, "live": True, "ready": True}  # no detail


def test_metrics_need_the_token_on_the_portal_listener(appliance: Appliance) -> None:
    url = appliance.addresses["portal_url"] + "metrics"
    assert requests.get(url, timeout=5).status_code == 401
    wrong = requests.get(url, headers={"Authorization": "Bearer not-it"}, timeout=5)
    assert wrong.status_code == 401 and "hotspotd_" not in wrong.text
    assert requests.get(url, headers=bearer(appliance), timeout=10).status_code == 200


def test_healthz_not_ready_names_the_reason(tmp_path: Path) -> None:
    with running_appliance(tmp_path) as appliance:  # its own: RADIUS is stopped here
        assert healthz(appliance).status_code == 200
        appliance.radius.stop()  # as if its threads had died
        response = healthz(appliance)
        problems = appliance.ops.problems()
    body = response.json()
    assert response.status_code == 503
    assert body["ready"] is False and body["live"] is True
    assert body["reasons"] == ["radius: the RADIUS server is not running"]
    assert problems == body["reasons"]  # what withholds the systemd watchdog


def test_healthz_warns_when_the_router_is_stuck(appliance: Appliance) -> None:
    now = appliance.now()
    with appliance.db.write() as conn:
        conn.execute("INSERT INTO router_ops (mac, ip, action, state, attempts,"
                     " next_attempt_at, last_error, created_at) VALUES (?, ?, 'login',"
                     " 'pending', 3, ?, 'connection refused', ?)",
                     ("AA:BB:CC:00:07:99", "10.5.50.99", now + 3600, now - 900))
    try:
        body = healthz(appliance).json()
        assert body["ready"] is True
        assert body["warnings"] and body["warnings"][0].startswith("router: 1 router change")
        assert "connection refused" in body["warnings"][0]
        samples = scrape(appliance)
        assert samples["hotspotd_router_outbox_depth"][()] >= 1
        assert samples["hotspotd_router_outbox_oldest_age_seconds"][()] >= 899
    finally:
        with appliance.db.write() as conn:
            conn.execute("DELETE FROM router_ops WHERE mac = 'AA:BB:CC:00:07:99'")


def test_metrics_count_purchases_grants_daraja_and_radius(appliance: Appliance) -> None:
    assert bought(appliance, "254700000000")["status"] == "completed"
    assert bought(appliance, "254700000001")["status"] == "failed"
    wait_until(lambda: appliance.radius.stats.accepts >= 1,  # the router logs the device
               message="the router's RADIUS login")         # in through RADIUS
    samples = scrape(appliance)
    purchases = samples["hotspotd_purchases_total"]
    assert purchases[(("outcome", "completed"), ("result_code", "0"))] == 1
    assert purchases[(("outcome", "failed"), ("result_code", "1"))] == 1
    assert samples["hotspotd_grants_total"][(("kind", "payment"),)] == 1
    assert samples["hotspotd_settlement_delay_seconds_count"][()] >= 2
    assert samples["hotspotd_settlement_delay_seconds_bucket"][(("le", "+Inf"),)] >= 2
    daraja = samples["hotspotd_daraja_requests_total"]
    assert daraja[(("operation", "stk_push"),)] >= 2
    assert samples["hotspotd_radius_requests_total"][(("outcome", "accepts"),)] >= 1
    assert samples["hotspotd_radius_decision_seconds_count"][(("kind", "auth"),)] >= 1
    assert samples["hotspotd_devices_entitled"][()] >= 1
    assert "hotspotd_devices_online" in samples and "hotspotd_disk_free_bytes" in samples
    slots = samples["hotspotd_daraja_budget_slots_total"]
    assert slots[(("class", "new"),)] >= 2  # two pushes (and OAuth)
    assert (("class", "settlement"),) in slots
    assert set(samples["hotspotd_daraja_budget_waiting"]) == {(("class", "settlement"),),
                                                              (("class", "new"),)}


def test_metrics_are_incremental_and_stable(appliance: Appliance) -> None:
    assert bought(appliance, "254700000000")["status"] == "completed"
    first = scrape(appliance)["hotspotd_purchases_total"]
    second = scrape(appliance)["hotspotd_purchases_total"]
    assert first == second  # a scrape counts nothing twice


def test_scheduled_jobs_backup_and_retention(appliance: Appliance) -> None:
    jobs = {job.id: job for job in appliance.scheduler.get_jobs()}
    assert {"backup", "privacy-retention", "alerts"} <= set(jobs)
    assert bought(appliance, "254700000000")["status"] == "completed"
    info = appliance.ops.backup_now()
    assert info is not None and info.path.parent == appliance.data_dir / "backups"
    assert info.payments == 1
    assert scrape(appliance)["hotspotd_last_backup_timestamp_seconds"][()] > 0
    assert appliance.ops.retention_now() == 0  # nothing older than a year


def test_demo_sends_customer_receipts_through_the_sms_simulator(appliance: Appliance) -> None:
    monitor = appliance.ops.alerts
    monitor.send_receipts()  # the cursor exists (set by the first run) or is set now
    bought(appliance, "254700000000")
    monitor.send_receipts()
    messages = appliance.sms_simulator.messages
    assert messages and messages[-1]["to"] == "+254700000000"
    assert "received, M-Pesa" in messages[-1]["message"]
    page = requests.get(appliance.addresses["sms_url"], timeout=5)
    assert page.status_code == 200 and "+254700000000" in page.text


def test_coa_and_daraja_wrappers_count_outcomes_and_errors() -> None:
    from prometheus_client import CollectorRegistry

    from hotspotd.ops.instrument import Instruments
    from hotspotd.radius.coa import CoaOutcome

    class Router:
        def change(self, session: object, change: object) -> CoaOutcome:
            return CoaOutcome(answered=True, acked=True)

        def disconnect(self, session: object) -> CoaOutcome:
            return CoaOutcome(answered=False)

    class Daraja:
        shortcode = "174379"

        def stk_query(self, checkout_id: str) -> str:
            raise TimeoutError("read timed out")

    registry = CollectorRegistry()
    instruments = Instruments(registry)
    coa = instruments.coa(Router())
    coa.change(None, None)
    coa.disconnect(None)
    daraja = instruments.daraja(Daraja())
    assert daraja.shortcode == "174379"
    with pytest.raises(TimeoutError):
        daraja.stk_query("ws_CO_1")
    value = registry.get_sample_value
    assert value("hotspotd_coa_total", {"request": "coa", "outcome": "ack"}) == 1
    assert value("hotspotd_coa_total", {"request": "disconnect", "outcome": "no_answer"}) == 1
    assert value("hotspotd_daraja_errors_total",
                 {"operation": "stk_query", "kind": "TimeoutError"}) == 1
