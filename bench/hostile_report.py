"""Figures of bench/hostile_wifi.py: each phase's honest customers, the prompts strangers
got, the attacker's answers, the daemon's counters, and the goals met or missed."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from benchstats import percentile

ATTACKER_MAC_PREFIX = "02:A7:7A:CC"  # hostile_attacks.Attacker
P99_GOAL = 2.0  # honest paid -> online p99 under attack, at most this times the quiet run's


def seconds(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0}
    return {"count": len(values), "p50": round(percentile(values, 50), 3),
            "p99": round(percentile(values, 99), 3), "max": round(max(values), 3)}


def metrics_moved(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Counters by how much they grew in the phase; gauges (no _total) by their value."""
    moved = {}
    for key, value in after.items():
        counter = key.split("{")[0].endswith("_total")
        change = value - before.get(key, 0.0) if counter else value
        if change:
            moved[key] = round(change, 3)
    return moved


def honest_figures(rows: list[dict[str, Any]], paid: dict[str, float]) -> dict[str, Any]:
    """`rows`: the phase's honest purchases; `paid`: number -> when its prompt was paid."""
    for row in rows:
        row["paid_at"] = paid.get(row["number"])
    online = [r for r in rows if r["online_at"]]
    return {
        "purchases": len(rows), "online": len(online), "lost": len(rows) - len(online),
        "answers": dict(Counter(a for r in rows for a in r["answers"])),
        "tried_again": sum(1 for r in rows if len(r["answers"]) > 1),
        "paid_to_online_seconds": seconds([r["online_at"] - r["paid_at"] for r in online
                                           if r["paid_at"]]),
        "request_to_online_seconds": seconds([r["online_at"] - r["first_request"]
                                              for r in online]),
        "first_answer_seconds": seconds([r["first_answer_seconds"] for r in rows])}


def summarise(phase: dict[str, Any], prompts: list[dict[str, Any]], honest: set[str],
              window_end: float, one_device_pushes: int) -> dict[str, Any]:
    """One phase's figures. Prompts to numbers no honest customer used, received by the
    simulator from the attacker's start until the next phase's: beyond the limits is what
    exceeds one device's prompts per window (`one_device_pushes`), the attacker being one
    client."""
    paid = {p["phone"]: p["resolved_at"] for p in prompts if p.get("receipt")}
    others = [p for p in prompts if p["phone"] not in honest
              and phase["window_start"] <= p["created_at"] < window_end]
    per_number = Counter(p["phone"] for p in others)
    beyond = max(0, len(others) - one_device_pushes) if phase["attack"] != "quiet" \
        else len(others)
    return {
        "attack": phase["attack"],
        "honest": honest_figures(phase["honest_rows"], paid),
        "prompts_to_other_numbers": {"prompts": len(others), "numbers": len(per_number),
                                     "most_to_one_number": max(per_number.values(), default=0),
                                     "beyond_one_device_limit": beyond},
        "attacker": phase["attacker"],
        "daemon_metrics_moved": phase["metrics_moved"],
    }


def payments_by_side(database: Path) -> dict[str, dict[str, int]]:
    """How every payment stands, honest devices' and the attacker's (read-only)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("SELECT mac, status, push_state, queued_at IS NOT NULL"
                            " FROM payments").fetchall()
    finally:
        conn.close()
    sides: dict[str, Counter[str]] = {"honest": Counter(), "attacker": Counter()}
    for mac, status, push_state, queued in rows:
        side = "attacker" if str(mac).upper().startswith(ATTACKER_MAC_PREFIX) else "honest"
        in_line = status == "pending" and queued and push_state == "sending"
        sides[side]["in_line" if in_line else f"{status}/{push_state}"] += 1
    return {side: dict(counts) for side, counts in sides.items()}


def verdicts(phases: dict[str, dict[str, Any]]) -> dict[str, bool]:
    """Adds each phase's p99 ratio to the quiet run and its goals; returns all-met by phase."""
    quiet = phases["quiet"]["honest"]["paid_to_online_seconds"].get("p99")
    for phase in phases.values():
        honest = phase["honest"]
        p99 = honest["paid_to_online_seconds"].get("p99")
        ratio = round(p99 / quiet, 2) if p99 is not None and quiet else None
        phase["p99_ratio_to_quiet"] = ratio
        phase["goals_met"] = {
            "p99_within_2x": ratio is not None and ratio <= P99_GOAL,
            "nothing_lost": honest["lost"] == 0,
            "no_prompts_beyond_limits":
                phase["prompts_to_other_numbers"]["beyond_one_device_limit"] == 0}
    return {name: all(phase["goals_met"].values()) for name, phase in phases.items()}


def render(result: dict[str, Any]) -> str:
    lines = [f"{'phase':<18}{'p50 s':>8}{'p99 s':>8}{'ratio':>7}{'lost':>6}{'others':>8}"
             "  attacker answers (most frequent)"]
    for name, phase in result["phases"].items():
        figures = phase["honest"]["paid_to_online_seconds"]
        answers = (phase["attacker"] or {}).get("answers") or {}
        shown = ", ".join(f"{k}: {v}" for k, v in
                          sorted(answers.items(), key=lambda kv: -kv[1])[:5])
        lines.append(f"{name:<18}{figures.get('p50', '-'):>8}{figures.get('p99', '-'):>8}"
                     f"{phase['p99_ratio_to_quiet'] or '-':>7}{phase['honest']['lost']:>6}"
                     f"{phase['prompts_to_other_numbers']['prompts']:>8}  {shown}")
    return "\n".join(lines)
