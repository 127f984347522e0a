"""RouterOS API word/sentence codec, query words and RouterOS durations."""

from __future__ import annotations

import socket
import threading

import pytest
from routeros_api import base_api

from hotspotd.router.durations import format_duration, parse_duration
from hotspotd.simulators.mikrotik.query import row_matches
from hotspotd.simulators.mikrotik.wire import (
    Command,
    ConnectionClosed,
    SocketReader,
    WireError,
    decode_length,
    encode_length,
    encode_sentence,
    read_sentence,
)

BOUNDARIES = [
    (0, 1), (0x7F, 1), (0x80, 2), (0x3FFF, 2), (0x4000, 3), (0x1FFFFF, 3),
    (0x200000, 4), (0xFFFFFFF, 4), (0x10000000, 5), (0xFFFFFFFF, 5),
]


def reader_of(data: bytes):
    view = memoryview(data)
    position = 0

    def read_exactly(count: int) -> bytes:
        nonlocal position
        if position + count > len(view):
            raise ConnectionClosed("end of data")
        chunk = bytes(view[position:position + count])
        position += count
        return chunk

    return read_exactly


@pytest.mark.parametrize(("length", "size"), BOUNDARIES)
def test_length_round_trips_at_every_boundary(length: int, size: int) -> None:
    encoded = encode_length(length)
    assert len(encoded) == size
    assert decode_length(reader_of(encoded)) == length


@pytest.mark.parametrize(("length", "size"), BOUNDARIES[:-1])
def test_length_matches_the_routeros_api_library(length: int, size: int) -> None:
    assert encode_length(length) == base_api.encode_length(length)
    assert base_api.decode_length(reader_of(encode_length(length))) == length


def test_known_encodings_from_the_protocol_description() -> None:
    assert encode_length(0x80) == b"\x80\x80"
    assert encode_length(0x4000) == b"\xc0\x40\x00"
    assert encode_length(0x200000) == b"\xe0\x20\x00\x00"
    assert encode_length(0x10000000) == b"\xf0\x10\x00\x00\x00"


def test_bad_lengths_are_refused() -> None:
    with pytest.raises(ValueError):
        encode_length(-1)
    with pytest.raises(ValueError):
        encode_length(0x100000000)
    with pytest.raises(WireError):
        decode_length(reader_of(b"\xf8"))


def test_sentence_with_long_words_round_trips_over_a_socket_byte_by_byte() -> None:
    words = ["/ip/hotspot/active/print", "=x=" + "a" * 0x80, "=y=" + "b" * 0x4000, ".tag=7"]
    data = encode_sentence(words) + encode_sentence(["/quit"])
    left, right = socket.socketpair()

    def trickle() -> None:
        for index in range(0, len(data), 7):  # split words and prefixes across sends
            left.sendall(data[index:index + 7])
        left.close()

    sender = threading.Thread(target=trickle)
    sender.start()
    reader = SocketReader(right, chunk=3)
    assert read_sentence(reader.read_exactly) == words
    assert read_sentence(reader.read_exactly) == ["/quit"]
    with pytest.raises(ConnectionClosed):
        read_sentence(reader.read_exactly)
    sender.join()
    right.close()


def test_truncated_word_is_a_closed_connection() -> None:
    data = encode_sentence(["/login", "=name=admin"])[:-4]
    with pytest.raises(ConnectionClosed):
        read_sentence(reader_of(data))


def test_command_parse_splits_attributes_queries_and_tag() -> None:
    command = Command.parse(["/ip/hotspot/active/print", "=.proplist=.id,user", "?user=a",
                             "?#|", "=detail=", "=password", ".tag=12"])
    assert command.path == "/ip/hotspot/active/print"
    assert command.api_attributes == {".proplist": ".id,user"}
    assert command.attributes == {"detail": "", "password": ""}
    assert command.queries == ["user=a", "#|"]
    assert command.tag == "12"


def test_queries_follow_routeros_stack_semantics() -> None:
    row = {"user": "a", "bytes-in": "100"}
    assert row_matches(["user=a"], row)
    assert not row_matches(["user=b"], row)
    assert row_matches(["user=b", "user=a", "#|"], row)
    assert not row_matches(["user=b", "user=a", "#&"], row)
    assert row_matches(["user=b", "#!"], row)
    assert row_matches(["user", "-address"], row)
    assert row_matches([">bytes-in=99", "<bytes-in=101"], row)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (45, "45s"), (3723, "1h2m3s"), (93780, "1d2h3m"), (777600, "1w2d"),
    (698_045, "1w1d1h54m5s"),
])
def test_durations_print_and_parse_like_routeros(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "seconds"), [
    ("00:01:02", 62), ("1d 02:00:00", 93600), ("1s500ms", 1), ("2w", 1_209_600),
])
def test_older_duration_formats_parse(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5x", "1h garbage"])
def test_malformed_durations_raise(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
