"""The Access-Request fast path agrees with pyrad and the dictionary, byte for byte."""

from __future__ import annotations

import pytest
from pyrad import packet as rp

from hotspotd.radius import fastpath
from hotspotd.radius.dictionary import load_dictionary
from hotspotd.radius.messages import AccessDecision, DropPacket

SECRET = b"fast-secret"


def request(password: str = "pw-1234567890-abcdef", **extra: object) -> rp.AuthPacket:
    packet = rp.AuthPacket(code=rp.AccessRequest, secret=SECRET, dict=load_dictionary())
    packet["User-Name"] = "AA:BB:CC:DD:EE:01"
    packet["User-Password"] = packet.PwCrypt(password)
    packet["Calling-Station-Id"] = "AA:BB:CC:DD:EE:01"
    packet["Framed-IP-Address"] = "10.5.50.9"
    for name, value in extra.items():
        packet[name.replace("_", "-")] = value
    packet.add_message_authenticator()
    return packet


def test_attribute_numbers_match_the_dictionary() -> None:
    dictionary = load_dictionary()
    for name, number in (("User-Name", 1), ("User-Password", 2), ("CHAP-Password", 3),
                         ("Framed-IP-Address", 8), ("Reply-Message", 18),
                         ("Session-Timeout", 27), ("Idle-Timeout", 28),
                         ("Calling-Station-Id", 31), ("NAS-Identifier", 32),
                         ("CHAP-Challenge", 60), ("Message-Authenticator", 80),
                         ("Acct-Interim-Interval", 85)):
        assert dictionary.attributes[name].code == number, name
    for name, number in (("Mikrotik-Rate-Limit", 8), ("Mikrotik-Total-Limit", 17),
                         ("Mikrotik-Total-Limit-Gigawords", 18)):
        assert dictionary.attributes[name].code == number
        assert dictionary.attributes[name].vendor == "Mikrotik"


def test_request_decodes_and_reply_verifies_with_pyrad() -> None:
    sent = request()
    data = sent.RequestPacket()
    raw = fastpath.decode_request(data, SECRET, require_message_authenticator=True)
    parsed = fastpath.access_request(raw, SECRET, "127.0.0.1")
    assert parsed.password_matches("pw-1234567890-abcdef")
    assert not parsed.password_matches("pw")
    assert parsed.framed_ip == "10.5.50.9"
    decision = AccessDecision(accept=True, session_timeout=99, rate_limit="2M/5M",
                              idle_timeout=30, total_limit_bytes=3 * 2**32 + 5,
                              reply_message="hi")
    reply_bytes = fastpath.encode_reply(raw, SECRET, decision, 120)
    reply = sent.CreateReply(packet=reply_bytes)
    assert sent.VerifyReply(reply, reply_bytes, enforce_ma=True)
    assert reply.code == rp.AccessAccept
    assert reply["Session-Timeout"] == [99] and reply["Idle-Timeout"] == [30]
    assert reply["Mikrotik-Rate-Limit"] == ["2M/5M"]
    assert reply["Mikrotik-Total-Limit"] == [5]
    assert reply["Mikrotik-Total-Limit-Gigawords"] == [3]
    assert reply["Acct-Interim-Interval"] == [120]


def test_tampering_and_malformed_packets_are_dropped() -> None:
    data = bytearray(request().RequestPacket())
    data[-1] ^= 1
    with pytest.raises(DropPacket, match="bad_message_authenticator|malformed"):
        fastpath.decode_request(bytes(data), SECRET, require_message_authenticator=False)
    with pytest.raises(DropPacket, match="malformed"):
        fastpath.decode_request(b"\x01\x02\x00\x30" + bytes(16), SECRET,
                                require_message_authenticator=False)
    plain = rp.AuthPacket(code=rp.AccessRequest, secret=SECRET, dict=load_dictionary())
    plain["User-Name"] = "x"
    with pytest.raises(DropPacket, match="missing_message_authenticator"):
        fastpath.decode_request(plain.RequestPacket(), SECRET,
                                require_message_authenticator=True)
