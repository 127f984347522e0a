"""What the web layer needs from the rest of the daemon, passed in by the wiring code."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app

from hotspotd.billing.purchases import PurchaseService
from hotspotd.store.db import Database


@dataclass
class WebContext:
    db: Database
    purchases: PurchaseService
    venue_name: str
    callback_token: str
    now: Callable[[], float] = field(default=time.time)
    health: Callable[[], dict[str, object]] = field(default=lambda: {})


def web_context() -> WebContext:
    return current_app.extensions["hotspotd"]
