"""The benchmarks' shared percentile, and small runs of bench/purchase_burst.py and
bench/hostile_wifi.py: a bench that no longer runs would otherwise go unnoticed until
someone needs its figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from benchstats import percentile  # noqa: E402


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(10, 0, -1)]  # unsorted on purpose
    assert percentile(values, 50) == 5.0
    assert percentile(values, 90) == 9.0
    assert percentile(values, 99) == 10.0
    assert percentile([7.0], 1) == 7.0
    assert percentile([], 50) == 0.0


def test_purchase_burst_small_run(tmp_path: Path) -> None:
    out = tmp_path / "burst.json"
    run = subprocess.run([sys.executable, str(BENCH / "purchase_burst.py"), "--purchases", "6",
                          "--requests-per-minute", "600", "--pin-delay", "0.2",
                          "--out", str(out)], capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["answers"] == {"202": 6}
    assert result["payments"] == {"completed:0": 6} and result["grants"] == 6
    assert result["phones_prompted"] == 6 and result["phones_prompted_more_than_once"] == 0
    assert result["devices_online"] == 6
    assert result["paid_to_online_seconds"]["max"] < 30


def test_hostile_wifi_small_run(tmp_path: Path) -> None:
    """The real daemon, honest phones beside one attacker running each attack in turn."""
    out = tmp_path / "hostile.json"
    run = subprocess.run([sys.executable, str(BENCH / "hostile_wifi.py"), "--purchases", "3",
                          "--interval", "0.5", "--ramp", "1", "--drain", "2",
                          "--connections", "40", "--claimed-mb", "8", "--login-rate", "150",
                          "--out", str(out)], capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(out.read_text())
    phases = result["phases"]
    assert list(phases) == ["quiet", "slow_connections", "body_flood", "login_flood",
                            "prompt_spam"]
    quiet = phases["quiet"]["honest"]
    assert quiet["online"] == 3 and quiet["lost"] == 0
    assert quiet["paid_to_online_seconds"]["count"] == 3
    for phase in phases.values():
        honest = phase["honest"]
        assert honest["purchases"] == 3 and honest["online"] + honest["lost"] == 3
        assert set(phase["goals_met"]) == {"p99_within_2x", "nothing_lost",
                                           "no_prompts_beyond_limits"}
    attacks = {name: phase["attacker"] for name, phase in phases.items() if name != "quiet"}
    assert all("error" not in report for report in attacks.values()), attacks
    assert attacks["slow_connections"]["counts"]["connections_opened"] >= 40
    assert attacks["body_flood"]["counts"]["bytes_written"] > 0
    assert attacks["prompt_spam"]["counts"]["purchases_sent"] > 0
    logins = attacks["login_flood"]
    assert logins["counts"]["sent:borrowed_mac"] > 0  # devices were online to borrow from
    assert "borrowed_mac:accept" not in logins["answers"]  # a name is bound to its device
    assert result["limits"]["web"] and result["payments_at_end"]["honest"]


def test_busy_venue_small_run(tmp_path: Path) -> None:
    """The real daemon pinned to a core through a tiny evening: RADIUS interims and MAC
    logins from their own process, purchases through the portal form with live status,
    page views, /metrics; every purchase online, every RADIUS request answered."""
    cores = sorted(os.sched_getaffinity(0))
    run = subprocess.run([sys.executable, str(BENCH / "busy_venue.py"), "--callbacks", "off",
                          "--online", "40", "--payments", "200", "--purchases", "3",
                          "--burst-seconds", "1", "--min-seconds", "4", "--settle", "1",
                          "--menu-watchers", "1", "--profile", "none",
                          "--daemon-core", str(cores[-1]), "--load-core", str(cores[0]),
                          "--out-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    result = json.loads((tmp_path / "busy_venue_callbacks_off.json").read_text())
    assert not any(result["lost"].values()), result["lost"]
    assert result["purchases"]["stored"] == {"completed, 1 grant(s)": 3}
    assert result["radius"]["access"]["count"] > 0 and result["radius"]["accounting"]["count"] > 0
    assert result["metrics_scrapes"]["statuses"] == ["200"]
    assert result["browsing"]["pages"] > 0 and result["figures"]["peak_rss_mb"] > 10
    assert result["cpu"]["daemon_cpu_seconds"] > 0


def test_start_stop_small_run(tmp_path: Path) -> None:
    """The real daemon started (READY=1 on a notify socket) and stopped by SIGTERM, warm,
    with its database dropped from the page cache, with phones long-polling, and after a
    SIGKILL mid-push."""
    out = tmp_path / "start_stop.json"
    run = subprocess.run([sys.executable, str(BENCH / "start_stop.py"), "--payments", "2000",
                          "--devices", "100", "--rounds", "1", "--cold-rounds", "1",
                          "--poll-rounds", "1", "--long-polls", "2", "--crash-rounds", "1",
                          "--serve-seconds", "0.5", "--no-backup-round",
                          "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["database"]["payments"] == 2000
    assert result["goals_met"] == {"ready": True, "stop": True, "clean_exit": True,
                                   "crash_recovered": True, "backup_abandoned": True}
    assert [len(result["rounds"][kind]) for kind in ("warm", "cold", "with_long_polls",
                                                     "after_crash")] == [1, 1, 1, 1]
    assert result["seconds"]["ready_warm"]["max"] > 0 and result["seconds"]["live_warm"]["max"] > 0
