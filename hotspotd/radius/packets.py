"""Decode, check and answer Accounting-Requests with pyrad's packet classes.

(Access-Requests take the leaner path in `fastpath.py`.) Everything here is pure (bytes
in, bytes out) so the socket loop in `server.py` stays small. A packet that must not be
answered raises `DropPacket` with a reason.

Message-Authenticator (RFC 2869 5.14, RFC 3579 3.2): every reply gets one, as the first
attribute, computed before the Response Authenticator. For an Accounting-Response it runs
with 16 zero octets in the authenticator field, as for the Accounting-Request itself (what
FreeRADIUS and pyrad do; radclient verifies it).
"""

from __future__ import annotations

from typing import Any

from pyrad import packet as rp
from pyrad.dictionary import Dictionary

from hotspotd.radius.messages import DropPacket


def decode_accounting_request(data: bytes, secret: bytes, dictionary: Dictionary) -> rp.AcctPacket:
    """Decode an Accounting-Request and check its Request Authenticator (RFC 2866 3)."""
    packet = _decode(rp.AcctPacket, data, secret, dictionary)
    if packet.code != rp.AccountingRequest:
        raise DropPacket("unsupported_code", f"code {packet.code} on the accounting port")
    if not packet.VerifyAcctRequest():
        raise DropPacket("bad_authenticator", "Request Authenticator does not match")
    if packet.message_authenticator and not _message_authenticator_ok(packet):
        raise DropPacket("bad_message_authenticator", "Message-Authenticator does not match")
    return packet


def _decode(cls: type[rp.Packet], data: bytes, secret: bytes, dictionary: Dictionary) -> Any:
    try:
        return cls(packet=data, secret=secret, dict=dictionary)
    except Exception as error:  # pyrad raises PacketError, struct.error, ValueError...
        raise DropPacket("malformed", str(error)) from error


def _message_authenticator_ok(packet: rp.Packet) -> bool:
    try:
        return bool(packet.verify_message_authenticator())
    except Exception:  # wrong length and the like
        return False


def first_value(packet: rp.Packet, name: str) -> Any | None:
    """Return the first decoded value of attribute `name`, or None when absent."""
    try:
        values = packet.get(name)
    except Exception as error:  # a value that does not decode as its type
        raise DropPacket("malformed", f"attribute {name}: {error}") from error
    return values[0] if values else None


def first_text(packet: rp.Packet, name: str) -> str | None:
    """Return the first value of a text attribute as str, or None when absent."""
    value = first_value(packet, name)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return None if value is None else str(value)


def encode_accounting_reply(request: rp.AcctPacket) -> bytes:
    """Encode an Accounting-Response, signed with Message-Authenticator."""
    reply = request.CreateReply()
    reply.message_authenticator = True
    return reply.ReplyPacket()
