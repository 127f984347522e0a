"""Secrets encrypted at rest: an authenticated cipher (AES-GCM) with a key in its own file.

The key file (32 random bytes, mode 0600) is created once by `hotspotd init` (or
`create_key_file`) and lives apart from the database, so a copied database alone reveals
no Daraja or router secret. Ciphertexts are text (`v1:` + base64 of nonce + ciphertext),
bound to a purpose string (associated data) so one secret cannot be swapped for another.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
PREFIX = "v1:"


class SecretBoxError(Exception):
    """The key file is missing, unsafe or wrong, or a ciphertext was tampered with."""


def create_key_file(path: Path, *, overwrite: bool = False) -> None:
    """Write a new random key with mode 0600; refuse to replace one unless told to."""
    if path.exists() and not overwrite:
        raise SecretBoxError(f"{path} exists; refusing to replace the encryption key")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(KEY_BYTES))
    os.replace(temporary, path)


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SecretBoxError(f"an encryption key is {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)

    @classmethod
    def from_key_file(cls, path: Path) -> SecretBox:
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise SecretBoxError(f"{path}: encryption key file missing (run hotspotd init)"
                                 ) from None
        if mode & 0o077:
            raise SecretBoxError(f"{path}: encryption key readable by group or others;"
                                 " chmod 600 it")
        return cls(path.read_bytes())

    def encrypt(self, plaintext: str, *, purpose: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), purpose.encode())
        return PREFIX + base64.b64encode(nonce + sealed).decode()

    def decrypt(self, ciphertext: str, *, purpose: str) -> str:
        if not ciphertext.startswith(PREFIX):
            raise SecretBoxError("not a hotspotd ciphertext")
        try:
            raw = base64.b64decode(ciphertext[len(PREFIX):], validate=True)
            return self._aead.decrypt(raw[:12], raw[12:], purpose.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise SecretBoxError("a stored secret could not be decrypted: wrong key or"
                                 " tampered data") from exc
