"""Drive FreeRADIUS's `radclient` as an independent RADIUS peer in tests.

`run_radclient(port, "auth", secret, {...})` sends one request and returns the reply code
and attributes as radclient printed them (`-x`), decoded with FreeRADIUS's own dictionary
(which includes MikroTik vendor 14988). radclient 3.2+ also checks the reply's
Response Authenticator and Message-Authenticator and drops a reply that fails: a
`RadclientReply.code` of None means no valid reply arrived.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import NamedTuple

import pytest

REQUIRE_ENV = "HOTSPOTD_REQUIRE_RADCLIENT"
KINDS = ("auth", "acct", "status", "coa", "disconnect")


class RadclientReply(NamedTuple):
    code: str | None  # "Access-Accept", "Accounting-Response", ...; None when no reply
    attributes: dict[str, str]  # first value of each reply attribute, strings unquoted
    output: str  # radclient's stdout and stderr, for assertion messages


def radclient_path() -> str:
    """Return radclient's path, or skip the test (fail when HOTSPOTD_REQUIRE_RADCLIENT=1)."""
    path = shutil.which("radclient") or (
        "/usr/bin/radclient" if os.path.exists("/usr/bin/radclient") else None
    )
    if path is None:
        reason = "radclient not installed (apt-get install freeradius-utils)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires it")
        pytest.skip(reason)
    return path


def run_radclient(
    port: int,
    kind: str,
    secret: str | bytes,
    attributes: dict[str, str | int | bytes],
    *,
    host: str = "127.0.0.1",
    timeout: float = 2.0,
    message_authenticator: bool = True,
) -> RadclientReply:
    """Send one `kind` request ("auth", "acct", ...) and parse radclient's report of the reply.

    Access-Requests carry `Message-Authenticator = 0x00` (radclient fills it in) unless
    `message_authenticator` is False. `CHAP-Password = "pw"` makes radclient do CHAP.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown radclient request kind {kind!r}")
    if isinstance(secret, bytes):
        secret = secret.decode()
    request = dict(attributes)
    if kind == "auth" and message_authenticator:
        request.setdefault("Message-Authenticator", b"\x00")
    command = [
        radclient_path(),
        "-x",
        "-r",
        "1",
        "-t",
        f"{timeout:g}",
        "--",  # a generated secret may start with "-": it is an argument, not an option
        f"{host}:{port}",
        kind,
        secret,
    ]
    completed = subprocess.run(
        command,
        input=format_attributes(request),
        capture_output=True,
        text=True,
        timeout=timeout + 10,
        check=False,
    )
    output = completed.stdout + completed.stderr
    code, reply_attributes = parse_reply(completed.stdout)
    return RadclientReply(code, reply_attributes, output)


def format_attributes(attributes: dict[str, str | int | bytes]) -> str:
    """Render attributes in radclient's input syntax: `Name = value, Name = value`."""
    return ", ".join(f"{name} = {_format_value(value)}" for name, value in attributes.items())


def _format_value(value: str | int | bytes) -> str:
    if isinstance(value, bool):
        raise TypeError("booleans are not RADIUS values")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def parse_reply(stdout: str) -> tuple[str | None, dict[str, str]]:
    """Find `Received <Code> Id ...` in radclient -x output and the attribute lines after it."""
    code: str | None = None
    attributes: dict[str, str] = {}
    for line in stdout.splitlines():
        if line.startswith("Received "):
            code = line.split()[1]
            attributes = {}
        elif code is not None and line.startswith("\t") and " = " in line:
            name, _, value = line.strip().partition(" = ")
            attributes.setdefault(name, _unquote(value))
        elif code is not None and line.strip():
            break
    return code, attributes


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value
