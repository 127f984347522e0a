"""Percentiles for every benchmark here, by one definition (nearest rank), so p50 / p90 /
p99 mean the same in every file of `bench/results/`."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `pct` % of the values at
    or below it (p50 of 1..10 is 5, p99 of 1..10 is 10); 0.0 when there are none."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(len(ordered) * pct / 100))
    return ordered[min(rank, len(ordered)) - 1]
