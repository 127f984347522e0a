"""The simulator's "phone": one self-contained HTML page (no external assets) where open
STK prompts are approved, refused or ignored. It reloads itself every 2 seconds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

RECENT_LIMIT = 10
BUTTONS = (("approve", "Approve"), ("wrong_pin", "Wrong PIN"), ("cancel", "Cancel"),
           ("ignore", "Ignore"))

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="2">
<title>M-Pesa phone (simulator)</title>
<style>
body{{font-family:sans-serif;margin:0;padding:1em;background:#eef5ee;color:#222;max-width:30em}}
h1{{font-size:1.2em;color:#2e7d32}} h2{{font-size:1em;margin-top:1.5em}}
.card{{background:#fff;border-radius:8px;padding:.8em;margin:.6em 0;
box-shadow:0 1px 3px rgba(0,0,0,.2)}}
.who{{font-size:.85em;color:#666}} form{{display:inline}}
button{{font-size:1em;margin:.3em .3em 0 0;padding:.5em .8em;border:0;border-radius:5px}}
.approve{{background:#2e7d32;color:#fff}} .ok{{color:#2e7d32}} .bad{{color:#c62828}}
</style></head>
<body><h1>M-Pesa phone (simulator)</h1>
<h2>Waiting for the customer</h2>{open_prompts}
<h2>Recent</h2>{recent}
</body></html>
"""


def render_phone_page(prompts: Sequence[Mapping[str, object]]) -> str:
    """The page for a `DarajaSimulator.prompts()` snapshot."""
    pending = [p for p in prompts if p["state"] == "pending"]
    resolved = [p for p in prompts if p["state"] != "pending"][-RECENT_LIMIT:][::-1]
    open_html = "".join(_open_card(p) for p in pending) or "<p>No open prompts.</p>"
    recent_html = "".join(_resolved_card(p) for p in resolved) or "<p>Nothing yet.</p>"
    return _PAGE.format(open_prompts=open_html, recent=recent_html)


def _question(prompt: Mapping[str, object]) -> str:
    return (f"Pay KES {prompt['amount']} to {prompt['party_b']} "
            f"account {prompt['account_reference']}?")


def _open_card(prompt: Mapping[str, object]) -> str:
    checkout_id = escape(str(prompt["checkout_request_id"]))
    buttons = "".join(
        f'<form method="post" action="/phone/{checkout_id}/{outcome}">'
        f'<button class="{outcome}" type="submit">{label}</button></form>'
        for outcome, label in BUTTONS)
    return (f'<div class="card"><div class="who">{escape(str(prompt["phone"]))}</div>'
            f"<p>{escape(_question(prompt))}</p>{buttons}</div>")


def _resolved_card(prompt: Mapping[str, object]) -> str:
    if prompt["result_code"] == 0:
        status = f'<span class="ok">Paid, receipt {escape(str(prompt["receipt"]))}</span>'
    else:
        status = (f'<span class="bad">{escape(str(prompt["result_code"]))}: '
                  f'{escape(str(prompt["result_desc"]))}</span>')
    return (f'<div class="card"><div class="who">{escape(str(prompt["phone"]))}</div>'
            f"<p>{escape(_question(prompt))}</p>{status}</div>")
