"""The owner UI over plain HTTP: the CSRF token of a page, and a logged-in session."""

from __future__ import annotations

import re

import requests


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
