"""Build the M-Pesa side of the appliance from the configuration (called by app.py).

One function, so app.py stays the one place that wires, without knowing the pieces of
issue 3: the purchase service with its abuse limits, the callback intake with its source
policy and channel tokens, Pull Transactions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotspotd.daraja.budget import RequestBudget
from hotspotd.daraja.sources import SourcePolicy
from hotspotd.mpesa.c2b_verify import C2BVerifier
from hotspotd.mpesa.callback_intake import CallbackIntake, CallbackSettings
from hotspotd.mpesa.channel_clients import ChannelClients, callback_urls
from hotspotd.mpesa.channels import has_channels, load_channels
from hotspotd.mpesa.pull import ChannelPulls
from hotspotd.mpesa.purchases import PurchaseService, SettlementPolicy
from hotspotd.mpesa.push_limits import PushGuard, PushLimits
from hotspotd.mpesa.push_queue import PushQueue
from hotspotd.secretbox import SecretBox
from hotspotd.store.db import Database

Schedule = Callable[[float, Callable[[], None]], None]


@dataclass
class MpesaSide:
    purchases: PurchaseService
    callbacks: CallbackSettings
    pull: ChannelPulls | None
    queue: PushQueue


def request_budget(config: Any) -> RequestBudget:
    return RequestBudget(per_minute=float(config.daraja.requests_per_minute))


def stored_channel_tokens(config: Any, db: Database) -> dict[str, str]:
    """Callback path tokens of the channels stored in the database (their secrets need the
    `[security] key_file`; a missing or wrong key stops start-up)."""
    if not has_channels(db.connection()):
        return {}
    box = SecretBox.from_key_file(Path(config.security.key_file))
    return {channel.callback_token: channel.name for channel in load_channels(db, box)}


def build_mpesa(config: Any, db: Database, daraja: Any, *, callback_base: str,
                schedule: Schedule, on_grant: Callable[[], None],
                now: Callable[[], float] = time.time, simulator: Any = None,
                wrap: Callable[[Any], Any] = lambda client: client) -> MpesaSide:
    """`simulator`: the embedded Daraja simulator, when that is the backend (stored channels
    then talk to it too); `wrap`: the ops instruments' counting wrapper for channel clients."""
    token = config.web.callback_token
    urls = callback_urls(callback_base, token)
    channels = ChannelClients(db, daraja, default_token=token, callback_base=callback_base,
                              key_file=Path(config.security.key_file), simulator=simulator,
                              wrap=wrap)
    settlement, limits = config.settlement, config.limits
    policy = SettlementPolicy(
        inline_query_delays=tuple(settlement.inline_query_delays),
        query_backoff=tuple(settlement.query_backoff_seconds),
        pending_expiry=float(settlement.pending_expiry_seconds),
        queue_max_wait=float(settlement.queue_max_seconds),
        reconcile_wait=0.8 * settlement.reconcile_interval_seconds,
        account_reference=config.daraja.account_reference)
    guard = PushGuard(db, PushLimits.from_config(limits), now)
    in_line = threading.Event()  # set when a payment joins the line: wakes the worker
    purchases = PurchaseService(db, daraja, callback_url=urls["stk"], policy=policy,
                                schedule=schedule, on_grant=on_grant, now=now, guard=guard,
                                on_queued=in_line.set, channels=channels)
    queue = PushQueue(db, purchases, budget=daraja.budget, wake=in_line,
                      now=now)
    intake = CallbackIntake(db, purchases, daraja, schedule=schedule, now=now)
    sources = SourcePolicy.from_config(config.daraja.callback_allowlist,
                                       config.daraja.trusted_proxies)
    tokens = {token: "default"} | stored_channel_tokens(config, db)
    pulls = ChannelPulls(db, channels, nominated_number=config.c2b.pull_nominated_number,
                         on_grant=on_grant, now=now)
    verifier = C2BVerifier(db, pulls, schedule=schedule, on_grant=on_grant, now=now,
                           within=float(config.c2b.verify_within_seconds))
    schedule(1.0, verifier.verify_due)  # confirmations still waiting from before a stop
    callbacks = CallbackSettings(intake, channel_tokens=tokens, sources=sources,
                                 c2b_validation=config.c2b.validation, on_grant=on_grant,
                                 c2b_verifier=verifier)
    pull = pulls if config.c2b.pull_interval_seconds else None
    return MpesaSide(purchases, callbacks, pull, queue)
