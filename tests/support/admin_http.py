"""The owner UI over plain HTTP: the CSRF token of a page, and a logged-in session."""

from __future__ import annotations

import re
import time
from typing import Any

import requests

from hotspotd.admin.accounts import create_account


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:500]
    return match[1]


def owner_session(base: str, username: str, password: str) -> requests.Session:
    """Log in at `base` + "login" (base ends with /admin/); asserts it worked."""
    session = requests.Session()
    token = csrf_of(session.get(base + "login", timeout=5).text)
    response = session.post(base + "login", timeout=10, data={
        "username": username, "password": password, "csrf_token": token})
    assert response.url.rstrip("/") == base.rstrip("/"), response.text[:300]
    return session


def add_owner_and_cashier(db: Any, owner: tuple[str, str], cashier: tuple[str, str]) -> None:
    """An owner account and a read-only cashier account, as (username, password)."""
    create_account(db, username=owner[0], password=owner[1], now=time.time())
    create_account(db, username=cashier[0], password=cashier[1], role="cashier",
                   now=time.time())
