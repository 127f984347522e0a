"""Access-Request in and Access-Accept/-Reject out without building pyrad objects.

The authentication port is the hot path (a stadium's worth of phones logging in), and
pyrad's generic packet classes cost more than the rest of an answer together. This module
does the same checks with `struct`, `hashlib` and `hmac` on the bytes, for exactly the
attributes the daemon reads and writes (numbers as in `radius/dictionary*`, checked by the
tests):

- RFC 2865 3: header, length, attributes; RFC 2865 5.2 User-Password (PAP) decryption;
  RFC 1994 / 2865 5.3 CHAP-Password with CHAP-Challenge (or the Request Authenticator);
- RFC 3579 3.2 Message-Authenticator: verified when present, required when configured
  (BlastRADIUS); every reply carries one, first, computed over the reply with the Request
  Authenticator, before the Response Authenticator (RFC 2865 3);
- RFC 2865 5.33 Proxy-State: every one of a request is copied, unmodified and in order, to
  the end of its reply (a proxy in front, e.g. FreeRADIUS, matches replies by it).

Anything that must not be answered raises `DropPacket`, as `packets.py` does.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from hotspotd.radius.messages import AccessDecision, AccessRequest, DropPacket

ACCESS_REQUEST, ACCESS_ACCEPT, ACCESS_REJECT = 1, 2, 3
USER_NAME, USER_PASSWORD, CHAP_PASSWORD = 1, 2, 3
FRAMED_IP_ADDRESS, REPLY_MESSAGE, VENDOR_SPECIFIC = 8, 18, 26
SESSION_TIMEOUT, IDLE_TIMEOUT = 27, 28
CALLING_STATION_ID, NAS_IDENTIFIER = 31, 32
PROXY_STATE = 33
CHAP_CHALLENGE, MESSAGE_AUTHENTICATOR, ACCT_INTERIM_INTERVAL = 60, 80, 85
MIKROTIK = 14988
MIKROTIK_RATE_LIMIT, MIKROTIK_TOTAL_LIMIT, MIKROTIK_TOTAL_LIMIT_GIGAWORDS = 8, 17, 18
GIGAWORD = 2**32
MAX_TEXT = 253
MAX_PACKET = 4096  # RFC 2865 3
_HEADER = struct.Struct("!BBH16s")
_ZERO_MA = bytes(16)
_MA_HEADER = bytes((MESSAGE_AUTHENTICATOR, 18))
_INTEGER = struct.Struct("!BBI")
_REPLY_HEADER = struct.Struct("!BBH")
_keyed_hmacs: dict[bytes, hmac.HMAC] = {}
_secret_states: dict[bytes, Any] = {}


def hmac_md5(secret: bytes, message: bytes) -> bytes:
    """HMAC-MD5 (RFC 2104) by the standard library, keyed once per secret: each call
    copies the keyed state (`HMAC.copy()`) instead of hashing the key's pads again (each
    request needs two: the request's and the reply's Message-Authenticator)."""
    keyed = _keyed_hmacs.get(secret)
    if keyed is None:
        keyed = hmac.new(secret, digestmod="md5")  # by name: OpenSSL's HMAC, the quickest
        if len(_keyed_hmacs) < 256:  # one entry per configured RADIUS client secret
            _keyed_hmacs[secret] = keyed
    digest = keyed.copy()
    digest.update(message)
    return digest.digest()


class RawRequest(NamedTuple):
    """A checked Access-Request: its identifier, authenticator and, by type, the first
    value of each attribute (the daemon reads none that may repeat); `proxy_state` is
    every Proxy-State attribute as received (type, length, value), in order, for the reply."""

    identifier: int
    authenticator: bytes
    attributes: dict[int, bytes]
    proxy_state: bytes = b""


def decode_request(data: bytes, secret: bytes, *, require_message_authenticator: bool
                   ) -> RawRequest:
    """Parse and check an Access-Request (length, attributes, Message-Authenticator)."""
    if len(data) < 20:
        raise DropPacket("malformed", f"packet of {len(data)} octets")
    code, identifier, length, authenticator = _HEADER.unpack_from(data)
    if length < 20 or length > len(data):
        raise DropPacket("malformed", f"Length field {length} for {len(data)} octets")
    if code != ACCESS_REQUEST:
        raise DropPacket("unsupported_code", f"code {code} on the auth port")
    if length < len(data):
        data = data[:length]  # octets after Length are padding (RFC 2865 3)
    attributes, ma_offset, proxy_state = _attributes(data, length)
    if ma_offset is not None:
        zeroed = data[:ma_offset] + _ZERO_MA + data[ma_offset + 16:]
        expected = hmac_md5(secret, zeroed)
        if not hmac.compare_digest(expected, data[ma_offset:ma_offset + 16]):
            raise DropPacket("bad_message_authenticator", "Message-Authenticator does not match")
    elif require_message_authenticator:
        raise DropPacket("missing_message_authenticator", "no Message-Authenticator")
    return RawRequest(identifier, authenticator, attributes, proxy_state)


def _attributes(data: bytes, length: int) -> tuple[dict[int, bytes], int | None, bytes]:
    """The first value of each attribute type, where the Message-Authenticator's value
    starts, and the Proxy-State attributes whole, in order; every length is checked."""
    attributes: dict[int, bytes] = {}
    ma_offset = None
    proxy_state = b""
    position = 20
    while position < length:
        if position + 2 > length:
            raise DropPacket("malformed", "truncated attribute header")
        kind, size = data[position], data[position + 1]
        end = position + size
        if size < 2 or end > length:
            raise DropPacket("malformed", f"attribute {kind} of length {size}")
        if kind == MESSAGE_AUTHENTICATOR:
            if size != 18 or ma_offset is not None:
                raise DropPacket("malformed", "bad or repeated Message-Authenticator")
            ma_offset = position + 2
        elif kind == PROXY_STATE:
            proxy_state += data[position:end]
        if kind not in attributes:
            attributes[kind] = data[position + 2:end]
        position = end
    return attributes, ma_offset, proxy_state


def access_request(raw: RawRequest, secret: bytes, nas_address: str) -> AccessRequest:
    """The daemon-facing request: names, addresses and a password checker."""
    attributes = raw.attributes
    names = attributes.get(USER_NAME)
    if names is None:
        raise DropPacket("malformed", "Access-Request without User-Name")
    framed = attributes.get(FRAMED_IP_ADDRESS)
    if framed is not None and len(framed) != 4:
        raise DropPacket("malformed", "Framed-IP-Address is not 4 octets")
    station = attributes.get(CALLING_STATION_ID)
    nas_identifier = attributes.get(NAS_IDENTIFIER)
    return AccessRequest(
        names.decode("utf-8", "replace"),
        station.decode("utf-8", "replace") if station is not None else None,
        socket.inet_ntoa(framed) if framed is not None else None,
        nas_address,
        nas_identifier.decode("utf-8", "replace") if nas_identifier is not None else None,
        _password_checker(raw, secret))


def _password_checker(raw: RawRequest, secret: bytes) -> Callable[[str], bool]:
    chap = raw.attributes.get(CHAP_PASSWORD)
    if chap is not None:
        if len(chap) != 17:
            raise DropPacket("malformed", f"CHAP-Password of {len(chap)} octets")
        challenge = raw.attributes.get(CHAP_CHALLENGE) or raw.authenticator

        def chap_matches(candidate: str) -> bool:
            expected = hashlib.md5(chap[:1] + candidate.encode("utf-8") + challenge).digest()
            return hmac.compare_digest(chap[1:], expected)

        return chap_matches
    hidden = raw.attributes.get(USER_PASSWORD)
    if hidden is None:
        return lambda candidate: False
    cleartext = pap_decrypt(hidden, secret, raw.authenticator)
    return lambda candidate: hmac.compare_digest(cleartext, candidate.encode("utf-8"))


def pap_decrypt(hidden: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """RFC 2865 5.2: undo the MD5 stream cipher; trailing NUL padding is removed."""
    if not hidden or len(hidden) % 16 or len(hidden) > 128:
        raise DropPacket("malformed", f"User-Password of {len(hidden)} octets")
    keyed = _secret_md5(secret)
    clear = b""
    last = authenticator
    for start in range(0, len(hidden), 16):  # once for a password of up to 16 octets
        block = hidden[start:start + 16]
        stream = keyed.copy()
        stream.update(last)
        plain = int.from_bytes(block, "big") ^ int.from_bytes(stream.digest(), "big")
        clear += plain.to_bytes(16, "big")
        last = block
    return clear.rstrip(b"\x00")


def _secret_md5(secret: bytes) -> Any:
    """MD5 with the secret already hashed in: copy it, add the rest (same digest as
    `hashlib.md5(secret + rest)`)."""
    keyed = _secret_states.get(secret)
    if keyed is None:
        keyed = hashlib.md5(secret)
        if len(_secret_states) < 256:  # one entry per configured RADIUS client secret
            _secret_states[secret] = keyed
    return keyed


def encode_reply(raw: RawRequest, secret: bytes, decision: AccessDecision,
                 interim_interval: int) -> bytes:
    """Access-Accept or Access-Reject, Message-Authenticator first, the request's
    Proxy-State last, then signed."""
    body: list[bytes] = []  # after the Message-Authenticator
    if decision.accept:
        code = ACCESS_ACCEPT
        _integer(body, SESSION_TIMEOUT, decision.session_timeout)
        _integer(body, IDLE_TIMEOUT, decision.idle_timeout)
        if decision.rate_limit:
            _vendor(body, MIKROTIK_RATE_LIMIT, decision.rate_limit.encode("utf-8")[:MAX_TEXT - 6])
        if decision.total_limit_bytes:
            _vendor(body, MIKROTIK_TOTAL_LIMIT,
                    struct.pack("!I", decision.total_limit_bytes % GIGAWORD))
            if decision.total_limit_bytes >= GIGAWORD:
                _vendor(body, MIKROTIK_TOTAL_LIMIT_GIGAWORDS,
                        struct.pack("!I", decision.total_limit_bytes // GIGAWORD))
        _integer(body, ACCT_INTERIM_INTERVAL, interim_interval)
    else:
        code = ACCESS_REJECT
    if decision.reply_message:
        text = decision.reply_message.encode("utf-8")[:MAX_TEXT]
        body.append(bytes((REPLY_MESSAGE, len(text) + 2)) + text)
    body.append(raw.proxy_state)
    rest = b"".join(body)
    if 38 + len(rest) > MAX_PACKET:  # 20 + 18 (MA): a request's Proxy-State can fill one
        raise DropPacket("reply_too_long", f"reply of {38 + len(rest)} octets")
    header = _REPLY_HEADER.pack(code, raw.identifier, 38 + len(rest))
    signature = hmac_md5(secret, header + raw.authenticator + _MA_HEADER + _ZERO_MA + rest)
    attributes = _MA_HEADER + signature + rest
    response = hashlib.md5(header + raw.authenticator + attributes + secret).digest()
    return header + response + attributes


def _integer(body: list[bytes], kind: int, value: int | None) -> None:
    if value is not None:
        body.append(_INTEGER.pack(kind, 6, int(value) & 0xFFFFFFFF))


def _vendor(body: list[bytes], vendor_type: int, value: bytes) -> None:
    body.append(struct.pack("!BBIBB", VENDOR_SPECIFIC, len(value) + 8, MIKROTIK, vendor_type,
                            len(value) + 2) + value)
