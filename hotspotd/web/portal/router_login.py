"""The portal's fallback login: post the router's own hotspot login form from the page.

The daemon logs a paid device in through the router API; if that has not happened a few
seconds after payment, the status page posts MikroTik's login form (`$(link-login-only)`)
with `username` = the device's MAC and, as password, the device's OWN credential
(`access.access.device_password`, derived from the MAC-login password): RADIUS accepts it
only in a login of that MAC from that MAC, so the page never holds anything that logs in
another device, and the shared MAC-login password never leaves the appliance, not even
with PAP (where the password is in the page in clear). For CHAP the router's `chap-id`
and `chap-challenge` arrive octal-escaped (`\\316\\073…`); the response
`MD5(chap-id + password + chap-challenge)` is computed here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from hotspotd.access.access import device_password

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
    """The router login form for the device `mac`, or None when the link is missing or not
    http(s), or there is no MAC-login password. `password` is the shared MAC-login password
    (`[radius] mac_password`): only the device's own credential derived from it goes in."""
    if not password or urlsplit(link_login_only).scheme not in ("http", "https"):
        return None
    own = device_password(password, mac)
    secret = chap_response(chap_id, own, chap_challenge) if chap_id and chap_challenge \
        else own
    fields = {"username": mac, "password": secret, "popup": "false"}
    if dst:
        fields["dst"] = dst
    return LoginForm(link_login_only, fields)
