"""What the portal shows about a purchase or a device, in the customer's language.

A purchase goes through phases the page names: `queued` (in line for M-Pesa, the prompt
comes shortly), `prompt` (check your phone), `confirming`
(M-Pesa is slow, we are asking), `connecting` (paid, the router is letting the device in),
`connected`, or `failed` with the specific reason and the next step.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

from hotspotd.ledger.payments import Payment
from hotspotd.mpesa.status import purchase_status
from hotspotd.web.i18n import format_duration, translate

CONFIRMING_AFTER_SECONDS = 20.0
PHASE_TITLES = {"queued": "queued_title", "prompt": "prompt_title",
                "confirming": "confirming_title", "connecting": "connecting_title",
                "connected": "connected_title", "failed": "failed_title"}


def device_online(conn: sqlite3.Connection, mac: str) -> bool:
    """Is the device let in: an online RADIUS session, or its last router login done?"""
    row = conn.execute("SELECT 1 FROM radius_sessions WHERE mac = ? AND status = 'online'"
                       " LIMIT 1", (mac,)).fetchone()
    if row is not None:
        return True
    row = conn.execute("SELECT state FROM router_ops WHERE mac = ? AND action = 'login'"
                       " ORDER BY id DESC LIMIT 1", (mac,)).fetchone()
    return row is not None and row["state"] == "done"


def phase_of(payment: Payment, online: bool, now: float) -> str:
    if payment.status == "completed":
        return "connected" if online else "connecting"
    if payment.status != "pending":
        return "failed"
    if payment.queued:
        return "queued"
    sent_at = payment.push_sent_at or payment.created_at
    slow = payment.push_state == "uncertain" or now - sent_at > CONFIRMING_AFTER_SECONDS
    return "confirming" if slow else "prompt"


def place_in_line(position: int, seconds_per_place: float, lang: str) -> str:
    """ "You are number 60 in line; the wait is about 2 min." ("" for no known place)."""
    if position <= 0 or seconds_per_place <= 0:
        return ""
    seconds = position * seconds_per_place
    wait = translate(lang, "under_a_minute") if seconds < 60 else \
        translate(lang, "about", time=format_duration(60 * math.ceil(seconds / 60), lang))
    return translate(lang, "queued_place", position=position, wait=wait)


def purchase_view(conn: sqlite3.Connection, payment: Payment, now: float,
                  lang: str, seconds_per_place: float = 0.0) -> dict[str, Any]:
    """Everything the status page and the live updates show; no phone number. In line, the
    message says the place and a rough wait (`seconds_per_place` per purchase ahead)."""
    base = purchase_status(conn, payment, now, lang)
    online = device_online(conn, payment.mac) if payment.status == "completed" else False
    phase = phase_of(payment, online, now)
    specific = phase in ("failed", "queued") or payment.push_state == "uncertain"
    message = base["message"] if specific else translate(lang, phase)
    if phase == "queued":
        place = place_in_line(base["queue_position"], seconds_per_place, lang)
        message = f"{message} {place}" if place else message
    plan = conn.execute("SELECT duration_seconds FROM plans WHERE id = ?",
                        (payment.plan_id,)).fetchone()
    left = int(base["seconds_remaining"])
    return {"id": payment.public_id, "status": payment.status, "phase": phase,
            "title": translate(lang, PHASE_TITLES[phase]), "message": message,
            "result_code": payment.result_code, "seconds_remaining": left,
            "time_left": format_duration(left, lang),
            "bought": translate(lang, "bought", time=format_duration(
                plan["duration_seconds"], lang)) if plan else "",
            "receipt": payment.receipt if payment.status == "completed" else None,
            "online": online, "queue_position": base["queue_position"]}


def plan_rows(plans: list[Any], lang: str) -> list[dict[str, Any]]:
    """Plans as the page lists them: "KES 20 · saa 1", plus the owner's name if it says more."""
    rows = []
    for plan in plans:
        duration = format_duration(plan.duration_seconds, lang)
        english = format_duration(plan.duration_seconds, "en")
        name = plan.name.strip().lower()
        extra = "" if name in (english.lower(), duration.lower()) else plan.name
        rows.append({"id": plan.id, "price": plan.price, "duration": duration,
                     "name": extra, "devices": plan.devices})
    return rows
