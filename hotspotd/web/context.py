"""What the web layer needs from the rest of the daemon, passed in by the wiring code."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from hotspotd.admin.options import AdminOptions
from hotspotd.admin.settings_store import SettingsStore
from hotspotd.daraja.sources import SourcePolicy
from hotspotd.mpesa.callback_intake import CallbackSettings
from hotspotd.mpesa.purchases import PurchaseService
from hotspotd.router.placement import DeviceLocator
from hotspotd.store.db import Database


@dataclass
class WebContext:
    db: Database
    purchases: PurchaseService
    venue_name: str
    callback_token: str
    locator: DeviceLocator  # which device a request comes from (the router's host table)
    web_sources: SourcePolicy  # [web] trusted_proxies: whose X-Forwarded-For is believed
    now: Callable[[], float] = field(default=time.time)
    health: Callable[[], dict[str, object]] = field(default=lambda: {})
    metrics: Callable[[], bytes] = field(default=lambda: b"")  # /metrics (issue 7)
    admin: AdminOptions = field(default_factory=AdminOptions)  # the owner UI (issue 6)
    wake_router: Callable[[], None] = field(default=lambda: None)  # outbox: work now
    self_test: Callable[[], list[Any]] = field(default=lambda: [])  # owner UI self-test
    portal: PortalOptions = field(default_factory=lambda: PortalOptions())  # issue 5
    mpesa: CallbackSettings | None = None  # issue 3: callback intake, channels, sources
    settings: SettingsStore | None = None  # owner UI settings over the config file (issue 6)

    def venue(self) -> str:
        """The venue name in force now (the owner may change it in Settings)."""
        return self.settings.config().venue.name if self.settings else self.venue_name

    def portal_text(self) -> str:
        """The owner's note for the portal and the voucher sheet ("" when none)."""
        return self.settings.config().venue.portal_text if self.settings else ""


def seconds_per_place_in_line(requests_per_minute: int) -> float:
    """Roughly how long each purchase ahead in line for the Daraja budget takes: its push
    and a query that settles it, two requests."""
    return 2 * 60.0 / requests_per_minute


@dataclass
class PortalOptions:
    """What the captive portal needs beyond the core (issue 5); defaults keep tests simple."""

    secret: str = ""  # keys the CSRF tokens; empty: a random one per process
    router_login_password: str = ""  # the MAC-login password, for the fallback login form
    payment_menu: dict[str, str] = field(default_factory=dict)  # {"kind", "number"} for C2B
    public_url: str = ""  # base of user-portal-url in the RFC 8908 answer
    long_poll_seconds: float = 20.0
    max_waiters: int = 4
    recovery_attempts: int = 5
    voucher_attempts: int = 10
    attempt_window_seconds: float = 900.0
    seconds_per_place: float = 1.2  # see `seconds_per_place_in_line`


def web_context() -> WebContext:
    return current_app.extensions["hotspotd"]
