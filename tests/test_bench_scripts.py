"""The benchmarks' shared percentile, and a small run of bench/purchase_burst.py: a bench
that no longer runs would otherwise go unnoticed until someone needs its figures."""

from __future__ import annotations

import json
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
