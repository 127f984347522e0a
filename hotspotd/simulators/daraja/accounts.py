"""The simulator's Daraja accounts: one per credential set (consumer key/secret, shortcode,
passkey, till), each with its own OAuth token store and C2B book.

A token is good only for its own account: a push or query signed with another account's
shortcode answers "Merchant does not exist", and a CheckoutRequestID of another account is
unknown. So a client that mixes up two channels' credentials fails the way it would at
Safaricom.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

from .c2b import C2BBook
from .tokens import TokenStore
from .validation import Merchant


@dataclass
class Account:
    consumer_key: str
    consumer_secret: str
    merchant: Merchant
    tokens: TokenStore
    c2b: C2BBook

    def __repr__(self) -> str:
        return f"Account(shortcode={self.merchant.shortcode!r})"


class Accounts:
    """Every account of one simulator; the first one is the default."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: list[Account] = []

    def add(self, *, consumer_key: str, consumer_secret: str, shortcode: str, passkey: str,
            till_number: str, token_ttl: int) -> Account:
        account = Account(consumer_key, consumer_secret,
                          Merchant(str(shortcode), passkey, str(till_number)),
                          TokenStore(token_ttl), C2BBook(str(shortcode)))
        with self._lock:
            if any(a.consumer_key == consumer_key for a in self._accounts):
                raise ValueError("an account with this consumer key exists already")
            self._accounts.append(account)
        return account

    def all(self) -> list[Account]:
        with self._lock:
            return list(self._accounts)

    def by_credentials(self, key: str, secret: str) -> Account | None:
        found = None
        for account in self.all():  # constant time per comparison, every account looked at
            same_key = secrets.compare_digest(key.encode(), account.consumer_key.encode())
            same_secret = secrets.compare_digest(secret.encode(),
                                                 account.consumer_secret.encode())
            if same_key and same_secret:
                found = account
        return found

    def by_token(self, token: str) -> Account | None:
        return next((a for a in self.all() if a.tokens.is_valid(token)), None)

    def by_shortcode(self, shortcode: str) -> Account:
        """The account of a shortcode (the default one when none matches)."""
        accounts = self.all()
        return next((a for a in accounts if a.merchant.shortcode == shortcode), accounts[0])

    def invalidate_all(self) -> None:
        for account in self.all():
            account.tokens.invalidate_all()
