"""Decode, check and answer RADIUS packets with pyrad's packet classes.

Everything here is pure (bytes in, bytes out) so the socket loop in `server.py` stays
small. A packet that must not be answered raises `DropPacket` with a reason.

Message-Authenticator (RFC 2869 5.14, RFC 3579 3.2): every reply gets one, as the first
attribute, computed before the Response Authenticator. For Access-Accept/-Reject the
HMAC-MD5 runs over the reply with the Request Authenticator in the authenticator field;
for an Accounting-Response it runs with 16 zero octets there, as for the
Accounting-Request itself (what FreeRADIUS and pyrad do; radclient verifies it).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from pyrad import packet as rp
from pyrad.dictionary import Dictionary

from hotspotd.radius.messages import AccessDecision, AccessRequest, DropPacket

USER_PASSWORD = 2
CHAP_PASSWORD = 3
CHAP_CHALLENGE = 60
MAX_ATTRIBUTE_TEXT = 253  # octets in one attribute value
GIGAWORD = 2**32


def decode_access_request(
    data: bytes, secret: bytes, dictionary: Dictionary, *, require_message_authenticator: bool
) -> rp.AuthPacket:
    """Decode an Access-Request and check its Message-Authenticator (BlastRADIUS)."""
    packet = _decode(rp.AuthPacket, data, secret, dictionary)
    if packet.code != rp.AccessRequest:
        raise DropPacket("unsupported_code", f"code {packet.code} on the auth port")
    if packet.message_authenticator:
        if not _message_authenticator_ok(packet):
            raise DropPacket("bad_message_authenticator", "Message-Authenticator does not match")
    elif require_message_authenticator:
        raise DropPacket("missing_message_authenticator", "no Message-Authenticator")
    return packet


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


def access_request_from(packet: rp.AuthPacket, nas_address: str) -> AccessRequest:
    """Build the daemon-facing `AccessRequest` from a checked Access-Request."""
    user_name = first_text(packet, "User-Name")
    if user_name is None:
        raise DropPacket("malformed", "Access-Request without User-Name")
    return AccessRequest(
        user_name=user_name,
        calling_station_id=first_text(packet, "Calling-Station-Id"),
        framed_ip=first_text(packet, "Framed-IP-Address"),
        nas_address=nas_address,
        nas_identifier=first_text(packet, "NAS-Identifier"),
        password_matches=password_checker(packet),
    )


def password_checker(packet: rp.AuthPacket) -> Callable[[str], bool]:
    """Return a function telling whether a cleartext matches the PAP or CHAP password."""
    chap_passwords = packet.get(CHAP_PASSWORD)
    if chap_passwords:
        return _chap_checker(packet, chap_passwords[0])
    pap_passwords = packet.get(USER_PASSWORD)
    if pap_passwords:
        return _pap_checker(packet, pap_passwords[0])
    return lambda candidate: False


def _pap_checker(packet: rp.AuthPacket, hidden: bytes) -> Callable[[str], bool]:
    try:
        cleartext = packet.PwDecrypt(hidden).encode("utf-8")
    except Exception as error:
        raise DropPacket("malformed", f"User-Password: {error}") from error

    def matches(candidate: str) -> bool:
        return hmac.compare_digest(cleartext, candidate.encode("utf-8"))

    return matches


def _chap_checker(packet: rp.AuthPacket, chap_password: bytes) -> Callable[[str], bool]:
    if len(chap_password) != 17:
        raise DropPacket("malformed", f"CHAP-Password of {len(chap_password)} octets")
    challenges = packet.get(CHAP_CHALLENGE)
    challenge = challenges[0] if challenges else packet.authenticator
    chap_id, response = chap_password[:1], chap_password[1:]

    def matches(candidate: str) -> bool:
        expected = hashlib.md5(chap_id + candidate.encode("utf-8") + challenge).digest()
        return hmac.compare_digest(response, expected)

    return matches


def encode_access_reply(
    request: rp.AuthPacket, decision: AccessDecision, interim_interval: int
) -> bytes:
    """Encode Access-Accept or Access-Reject, signed with Message-Authenticator."""
    reply = request.CreateReply()
    if decision.accept:
        reply.code = rp.AccessAccept
        _add_if_set(reply, "Session-Timeout", decision.session_timeout)
        _add_if_set(reply, "Idle-Timeout", decision.idle_timeout)
        _add_if_set(reply, "Mikrotik-Rate-Limit", decision.rate_limit)
        if decision.total_limit_bytes:
            reply["Mikrotik-Total-Limit"] = decision.total_limit_bytes % GIGAWORD
            if decision.total_limit_bytes >= GIGAWORD:
                reply["Mikrotik-Total-Limit-Gigawords"] = decision.total_limit_bytes // GIGAWORD
        reply["Acct-Interim-Interval"] = interim_interval
    else:
        reply.code = rp.AccessReject
    _add_if_set(reply, "Reply-Message", _clip(decision.reply_message))
    reply.message_authenticator = True
    return reply.ReplyPacket()


def encode_accounting_reply(request: rp.AcctPacket) -> bytes:
    """Encode an Accounting-Response, signed with Message-Authenticator."""
    reply = request.CreateReply()
    reply.message_authenticator = True
    return reply.ReplyPacket()


def _add_if_set(reply: rp.Packet, name: str, value: object | None) -> None:
    if value is not None:
        reply[name] = value


def _clip(text: str | None) -> str | None:
    if text is None:
        return None
    encoded = text.encode("utf-8")[:MAX_ATTRIBUTE_TEXT]
    return encoded.decode("utf-8", errors="ignore")
