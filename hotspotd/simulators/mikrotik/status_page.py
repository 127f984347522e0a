"""A small web page showing the simulated router's active hotspot hosts, and the simulated
network's side door: devices joining and leaving the WiFi.

`POST /hosts` `{"mac", "address"}` is what a phone joining the hotspot does on a real
network (DHCP, first packet): the router lists it in `/ip/hotspot/host`. The appliance
never reads this page; it learns who is where only through the RouterOS API, as from a
real router. `DELETE /hosts/<mac>`: the device left.
"""

from __future__ import annotations

import ipaddress
from typing import Protocol

from flask import Flask, jsonify, render_template_string, request

COLUMNS = ("user", "address", "mac-address", "login-by", "uptime", "session-time-left",
           "bytes-in", "bytes-out")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="2">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ identity }} — hotspot active</title>
<style>
 body { font-family: sans-serif; margin: 1.5em; }
 table { border-collapse: collapse; }
 th, td { border: 1px solid #bbb; padding: .3em .6em; text-align: left; }
 th { background: #eee; }
</style></head>
<body>
<h1>{{ identity }}: /ip hotspot active</h1>
<p>{{ rows|length }} active host{{ "" if rows|length == 1 else "s" }}</p>
<table>
<tr><th>#</th>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in rows %}
<tr><td>{{ row[".id"] }}</td>{% for c in columns %}<td>{{ row.get(c, "") }}</td>{% endfor %}</tr>
{% else %}
<tr><td colspan="{{ columns|length + 1 }}">no active hosts</td></tr>
{% endfor %}
</table>
</body></html>
"""


class ActiveSource(Protocol):
    identity: str

    def active_hosts(self) -> list[dict[str, str]]: ...
    def seen_hosts(self) -> list[dict[str, str]]: ...
    def add_host(self, mac: str, ip: str) -> None: ...
    def remove_host(self, mac: str) -> bool: ...


def create_status_app(router: ActiveSource) -> Flask:
    """GET / : HTML table refreshed every 2 s; GET /active.json : the same rows as JSON."""
    app = Flask(__name__)

    @app.get("/")
    def index() -> str:
        return render_template_string(PAGE, identity=router.identity,
                                      rows=router.active_hosts(), columns=COLUMNS)

    @app.get("/active.json")
    def active_json():  # type: ignore[no-untyped-def]
        return jsonify(router.active_hosts())

    @app.get("/hosts.json")
    def hosts_json():  # type: ignore[no-untyped-def]
        return jsonify(router.seen_hosts())

    @app.post("/hosts")
    def join():  # type: ignore[no-untyped-def]
        body = request.get_json(silent=True) or {}
        mac, address = str(body.get("mac", "")), str(body.get("address", ""))
        try:
            ipaddress.ip_address(address)
            router.add_host(mac, address)
        except ValueError as exc:
            return jsonify({"error": str(exc) or "bad address"}), 400
        return jsonify({"mac": mac.upper(), "address": address}), 201

    @app.delete("/hosts/<mac>")
    def leave(mac: str):  # type: ignore[no-untyped-def]
        try:
            gone = router.remove_host(mac)
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400
        return ("", 204) if gone else (jsonify({"error": "no such host"}), 404)

    return app
