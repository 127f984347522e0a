"""Which Daraja client talks for which channel.

"default" is the `[daraja]` section's client (built in app.py). Every stored channel
(`mpesa.channels`, secrets AES-GCM at rest) gets its own `DarajaClient`, built on first
use — the only moment its secrets are decrypted — rebuilt when the channel is edited
(`updated_at`) and forgotten once it is removed (owner UI). All clients share the
appliance's one request budget (`client_for`).

- New STK pushes go out on `push_channel()`: the stored channel marked active
  (`hotspotd mpesa use-channel`), else "default". The payment records it.
- A payment's STK queries, callback URL and callback checks use the payment's own channel,
  whatever is active later.
- Pull Transactions runs for every channel (`mpesa.pull.ChannelPulls`): `names()` reads
  the stored channels afresh each run, so a removed channel's Pull simply stops.

With `[daraja] backend = "simulator"` every channel talks to the embedded simulator, which
learns the channel's credentials as one more account (so a mixed-up credential fails there
as it would at Safaricom).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotspotd.daraja.client import client_for
from hotspotd.daraja.errors import DarajaError
from hotspotd.mpesa.channels import (
    DEFAULT_CHANNEL,
    Channel,
    active_channel,
    channel_versions,
    load_channel,
)
from hotspotd.secretbox import SecretBox, SecretBoxError
from hotspotd.store.db import Database

log = logging.getLogger(__name__)


class ChannelUnavailable(DarajaError):
    """A payment's channel is gone, or its secrets cannot be decrypted: nothing was sent."""


def callback_urls(base: str, token: str) -> dict[str, str]:
    root = f"{base.rstrip('/')}/callbacks/{token}"
    return {"stk": f"{root}/stk", "validation": f"{root}/c2b/validation",
            "confirmation": f"{root}/c2b/confirmation"}


@dataclass(frozen=True)
class ChannelEndpoint:
    """One channel as the payment flow uses it. No secret is readable from here (the
    client keeps its own privately; the URLs carry the path token by design)."""

    name: str
    client: Any  # DarajaClient (possibly wrapped by the ops instruments)
    urls: dict[str, str]
    shortcode: str

    def __repr__(self) -> str:
        return f"ChannelEndpoint(name={self.name!r}, shortcode={self.shortcode!r})"


class ChannelClients:
    def __init__(self, db: Database, default_client: Any, *, default_token: str,
                 callback_base: str, key_file: Path, simulator: Any = None,
                 wrap: Callable[[Any], Any] = lambda client: client) -> None:
        self._db = db
        self._template = default_client
        self._base = callback_base
        self._key_file = key_file
        self._simulator = simulator
        self._wrap = wrap
        self._lock = threading.Lock()
        self._built: dict[str, tuple[float, ChannelEndpoint]] = {}
        self.default = ChannelEndpoint(DEFAULT_CHANNEL, default_client,
                                       callback_urls(callback_base, default_token),
                                       str(default_client.shortcode))

    def push_channel(self) -> str:
        return active_channel(self._db.connection())

    def names(self) -> list[str]:
        """"default" and every channel stored now (read afresh: Pull follows removals)."""
        versions = channel_versions(self._db.connection())
        with self._lock:
            self._forget_removed(versions)
        return [DEFAULT_CHANNEL, *versions]

    def endpoint(self, name: str | None) -> ChannelEndpoint:
        """The endpoint of a channel (None: "default"); ChannelUnavailable if it is gone."""
        if not name or name == DEFAULT_CHANNEL:
            return self.default
        versions = channel_versions(self._db.connection())
        version = versions.get(name)
        with self._lock:
            self._forget_removed(versions)
            if version is None:
                raise ChannelUnavailable(f"Daraja channel {name!r} is not stored any more")
            built = self._built.get(name)
            if built is not None and built[0] == version:
                return built[1]
            endpoint = self._build(name)
            self._built[name] = (version, endpoint)
            return endpoint

    def _forget_removed(self, versions: dict[str, float]) -> None:
        """Drop the clients of channels no longer stored (removed in the owner UI), so their
        decrypted credentials do not stay in memory. Call with the lock held."""
        for name in [name for name in self._built if name not in versions]:
            del self._built[name]

    def _build(self, name: str) -> ChannelEndpoint:
        try:
            channel = load_channel(self._db, SecretBox.from_key_file(self._key_file), name)
        except SecretBoxError as exc:
            raise ChannelUnavailable(f"Daraja channel {name!r}: its secrets cannot be"
                                     f" decrypted ({type(exc).__name__})") from None
        if channel is None:
            raise ChannelUnavailable(f"Daraja channel {name!r} is not stored any more")
        client = client_for(self._template, base_url=self._base_url(channel),
                            consumer_key=channel.consumer_key,
                            consumer_secret=channel.consumer_secret,
                            shortcode=channel.shortcode, passkey=channel.passkey,
                            transaction_type=channel.kind, till_number=channel.till_number)
        log.info("Daraja channel %s: %s shortcode %s at %s", name, channel.kind,
                 channel.shortcode, client.base_url)
        return ChannelEndpoint(name, self._wrap(client),
                               callback_urls(self._base, channel.callback_token),
                               channel.shortcode)

    def _base_url(self, channel: Channel) -> str:
        sim = self._simulator
        if sim is None:
            return channel.base_url
        if not sim.has_account(channel.consumer_key):
            sim.add_account(consumer_key=channel.consumer_key,
                            consumer_secret=channel.consumer_secret,
                            shortcode=channel.shortcode, passkey=channel.passkey,
                            till_number=channel.till_number)
        return str(sim.url)
