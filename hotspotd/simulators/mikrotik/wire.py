"""RouterOS API wire format: length-prefixed words, sentences ended by an empty word.

Lengths are big-endian: < 0x80 in 1 byte; < 0x4000 in 2 bytes (`len | 0x8000`);
< 0x200000 in 3 bytes (`len | 0xC00000`); < 0x10000000 in 4 bytes (`len | 0xE0000000`);
otherwise `0xF0` followed by 4 bytes.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

MAX_WORD_LENGTH = 0xFFFFFFFF

_PREFIXES = (  # (upper bound, prefix bits, bytes)
    (0x80, 0x00, 1),
    (0x4000, 0x8000, 2),
    (0x200000, 0xC00000, 3),
    (0x10000000, 0xE0000000, 4),
)


class WireError(Exception):
    """The peer sent something that is not a valid API sentence."""


class ConnectionClosed(WireError):
    """The peer closed the connection (cleanly between sentences, or mid-word)."""


def encode_length(length: int) -> bytes:
    """Return the 1-5 byte prefix that announces a word of `length` bytes."""
    if length < 0 or length > MAX_WORD_LENGTH:
        raise ValueError(f"word length out of range: {length}")
    for bound, prefix, size in _PREFIXES:
        if length < bound:
            return (length | prefix).to_bytes(size, "big")
    return b"\xf0" + length.to_bytes(4, "big")


def decode_length(read_exactly: Callable[[int], bytes]) -> int:
    """Read one length prefix through `read_exactly(n)` and return the length."""
    first = read_exactly(1)[0]
    if first < 0x80:
        return first
    if first < 0xC0:
        extra, value = 1, first & 0x3F
    elif first < 0xE0:
        extra, value = 2, first & 0x1F
    elif first < 0xF0:
        extra, value = 3, first & 0x0F
    elif first == 0xF0:
        extra, value = 4, 0
    else:
        raise WireError(f"reserved control byte 0x{first:02X}")
    return (value << (8 * extra)) | int.from_bytes(read_exactly(extra), "big")


def encode_word(word: str | bytes) -> bytes:
    data = word.encode() if isinstance(word, str) else word
    return encode_length(len(data)) + data


def encode_sentence(words: Sequence[str | bytes]) -> bytes:
    """Return the bytes of a sentence: every word, then the empty word."""
    return b"".join(encode_word(word) for word in words) + b"\x00"


class SocketReader:
    """Reads exact byte counts from a socket, however the bytes are split across recv()."""

    def __init__(self, sock: socket.socket, chunk: int = 65536) -> None:
        self._sock = sock
        self._chunk = chunk
        self._buffer = bytearray()

    def read_exactly(self, count: int) -> bytes:
        while len(self._buffer) < count:
            data = self._sock.recv(max(self._chunk, count - len(self._buffer)))
            if not data:
                raise ConnectionClosed("connection closed by peer")
            self._buffer += data
        result = bytes(self._buffer[:count])
        del self._buffer[:count]
        return result


def read_sentence(read_exactly: Callable[[int], bytes]) -> list[str]:
    """Read words until the empty word; return them decoded (UTF-8, lossless for ASCII)."""
    words: list[str] = []
    while True:
        length = decode_length(read_exactly)
        if length == 0:
            return words
        words.append(read_exactly(length).decode("utf-8", errors="surrogateescape"))


@dataclass
class Command:
    """One API request sentence, split into its parts."""

    path: str
    attributes: dict[str, str] = field(default_factory=dict)
    api_attributes: dict[str, str] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)
    tag: str | None = None

    @classmethod
    def parse(cls, words: Sequence[str]) -> Command:
        if not words:
            raise WireError("empty sentence")
        command = cls(path=words[0])
        for word in words[1:]:
            command._add_word(word)
        return command

    def _add_word(self, word: str) -> None:
        if word.startswith(".tag="):
            self.tag = word[len(".tag="):]
        elif word.startswith("=."):
            key, _, value = word[1:].partition("=")
            self.api_attributes[key] = value
        elif word.startswith("="):
            key, _, value = word[1:].partition("=")
            self.attributes[key] = value
        elif word.startswith("?"):
            self.queries.append(word[1:])
        elif word.startswith("."):
            key, _, value = word.partition("=")
            self.api_attributes[key] = value
        else:
            raise WireError(f"unexpected word {word!r}")


def reply_words(kind: str, attributes: dict[str, str] | None = None,
                tag: str | None = None) -> list[str]:
    """Return one reply sentence (`!re`, `!done`, `!trap`...) as words."""
    words = [kind]
    words.extend(f"={key}={value}" for key, value in (attributes or {}).items())
    if tag is not None:
        words.append(f".tag={tag}")
    return words
