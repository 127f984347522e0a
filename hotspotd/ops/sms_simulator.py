"""A stand-in for Africa's Talking's bulk SMS API (POST /version1/messaging), for the demo
and tests: it checks the apiKey header and the form like the real one, keeps every message
and answers in the same JSON shape. `GET /` lists what was "sent"."""

from __future__ import annotations

import html
import threading
from typing import Any

from flask import Flask, jsonify, request


class SmsSimulator:
    def __init__(self, *, username: str, api_key: str) -> None:
        self.username, self.api_key = username, api_key
        self.messages: list[dict[str, str]] = []
        self.fail_next = 0  # answer this many requests with HTTP 500 (fault injection)
        self._lock = threading.Lock()

    def app(self) -> Flask:
        app = Flask(__name__)
        app.add_url_rule("/version1/messaging", view_func=self._send, methods=["POST"])
        app.add_url_rule("/", view_func=self._page)
        return app

    def _send(self) -> Any:
        with self._lock:
            if self.fail_next:
                self.fail_next -= 1
                return "gateway trouble", 500
        if request.headers.get("apiKey") != self.api_key:
            return "The supplied authentication is invalid", 401
        form = request.form
        if form.get("username") != self.username or not form.get("to") or \
                not form.get("message"):
            return jsonify({"SMSMessageData": {"Message": "InvalidRequest",
                                               "Recipients": []}}), 400
        recipients = []
        for number in form["to"].split(","):
            valid = number.startswith("+254") and number[1:].isdigit() and len(number) == 13
            if valid:
                with self._lock:
                    self.messages.append({"to": number, "message": form["message"],
                                          "from": form.get("from", "")})
            recipients.append({"number": number, "status": "Success" if valid else
                               "InvalidPhoneNumber", "statusCode": 101 if valid else 403,
                               "cost": "KES 0.8000" if valid else "0",
                               "messageId": f"ATXid_{len(self.messages)}"})
        return jsonify({"SMSMessageData": {"Message": f"Sent to {len(recipients)}/"
                                           f"{len(recipients)}", "Recipients": recipients}}), 201

    def _page(self) -> Any:
        rows = "".join(f"<li>{html.escape(m['to'])}: {html.escape(m['message'])}</li>"
                       for m in reversed(self.messages))
        return f"<!doctype html><title>SMS sent</title><h1>SMS sent</h1><ul>{rows}</ul>"
