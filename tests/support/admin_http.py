"""The owner UI over plain HTTP: the CSRF token of a page, accounts, and the one owner login
(`owner_session`; the `owner` fixture in conftest.py is it on a fresh appliance)."""

from __future__ import annotations

import re
import time
from typing import Any

import requests

from hotspotd.admin.accounts import create_account

OWNER = ("owner", "test owner password 1")  # the `owner` fixture's account
CASHIER = ("till", "test cashier password 1")


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:500]
    return match[1]


def owner_session(base: str, username: str = OWNER[0],
                  password: str = OWNER[1]) -> requests.Session:
    """Log in at `base` + "login" (base ends with /admin/); asserts it worked."""
    session = requests.Session()
    token = csrf_of(session.get(base + "login", timeout=5).text)
    response = session.post(base + "login", timeout=10, data={
        "username": username, "password": password, "csrf_token": token})
    assert response.url.rstrip("/") == base.rstrip("/"), response.text[:300]
    return session


def add_account(db: Any, account: tuple[str, str], role: str = "owner") -> None:
    """Store `account` (username, password) unless an account of that name exists."""
    if db.query_one("SELECT 1 FROM admin_accounts WHERE username = ?", (account[0],)) is None:
        create_account(db, username=account[0], password=account[1], role=role,
                       now=time.time())


def add_owner_and_cashier(db: Any, owner: tuple[str, str] = OWNER,
                          cashier: tuple[str, str] = CASHIER) -> None:
    """An owner account and a read-only cashier account, as (username, password)."""
    add_account(db, owner)
    add_account(db, cashier, role="cashier")
