"""The portal's fallback login: post the router's own hotspot login form from the page.

The daemon logs a paid device in through the router API; if that has not happened a few
seconds after payment, the status page posts MikroTik's login form (`$(link-login-only)`)
with `username` = the device's MAC. For CHAP the router's `chap-id` and `chap-challenge`
arrive octal-escaped (`\\316\\073…`); the response `MD5(chap-id + password +
chap-challenge)` is computed HERE, so the MAC-login password never reaches the browser.
PAP would need the password in the page: it is offered only to the device itself (its
source address is the device's) and only when the router asked for PAP.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_OCTAL = re.compile(r"\\([0-7]{1,3})")


def decode_octal_escapes(text: str) -> bytes:
    """MikroTik's `\\316\\073A` → b'\\xce;A' (what the JavaScript string literal would hold)."""
    out = bytearray()
    position = 0
    for match in _OCTAL.finditer(text):
        out += text[position:match.start()].encode("latin-1", "replace")
        out.append(int(match.group(1), 8) & 0xFF)
        position = match.end()
    out += text[position:].encode("latin-1", "replace")
    return bytes(out)


def chap_response(chap_id: str, password: str, chap_challenge: str) -> str:
    """hexMD5(chap-id + password + chap-challenge), as MikroTik's login.html computes it."""
    data = decode_octal_escapes(chap_id) + password.encode() + decode_octal_escapes(
        chap_challenge)
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class LoginForm:
    action: str
    fields: dict[str, str]


def login_form(*, link_login_only: str, mac: str, password: str, chap_id: str,
               chap_challenge: str, dst: str) -> LoginForm | None:
    """The router login form to post, or None when the link is missing or not http(s)."""
    if not password or urlsplit(link_login_only).scheme not in ("http", "https"):
        return None
    if chap_id and chap_challenge:
        secret = chap_response(chap_id, password, chap_challenge)
    else:
        secret = password
    fields = {"username": mac, "password": secret, "popup": "false"}
    if dst:
        fields["dst"] = dst
    return LoginForm(link_login_only, fields)
