"""What the web layer needs from the rest of the daemon, passed in by the wiring code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from hotspotd.admin.options import AdminOptions
from hotspotd.admin.settings_store import SettingsStore
from hotspotd.daraja.sources import SourcePolicy
from hotspotd.ledger.grants import Grant
from hotspotd.ledger.recovery import Recovery
from hotspotd.mpesa.callback_intake import CallbackSettings
from hotspotd.mpesa.purchases import PurchaseService
from hotspotd.router.placement import DeviceLocator
from hotspotd.store.db import Database


@dataclass(frozen=True)
class WebContext:
    """Every collaborator of the web layer, each required: the wiring code (hotspotd.app)
    passes them all, so no page behaves differently because something was left out."""

    db: Database
    purchases: PurchaseService
    callback_token: str
    locator: DeviceLocator  # which device a request comes from (the router's host table)
    web_sources: SourcePolicy  # [web] trusted_proxies: whose X-Forwarded-For is believed
    now: Callable[[], float]
    health: Callable[[], dict[str, object]]  # /healthz
    metrics: Callable[[], bytes]  # /metrics
    admin: AdminOptions  # the owner UI
    wake_router: Callable[[], None]  # the router outbox: work now
    self_test: Callable[[], list[Any]]  # the owner UI's self-test
    portal: PortalOptions  # the captive portal
    mpesa: CallbackSettings  # callback intake, channel tokens, sources
    settings: SettingsStore  # the owner's Settings over the config file
    # The voucher form: this venue's codes, or the network's when enrolled with a hub
    # (redeem(code=, mac=, ip=, now=) -> Grant; hotspotd.hub.roaming).
    redeem_voucher: Callable[..., Grant]
    # The recovery form: this venue's payments, or the network's when enrolled with a hub
    # (recover(receipt=, phone=, mac=, ip=, now=) -> Recovery; hotspotd.hub.roaming).
    recover_time: Callable[..., Recovery]

    def venue(self) -> str:
        """The venue name in force now (the owner may change it in Settings)."""
        return self.settings.config().venue.name

    def portal_text(self) -> str:
        """The owner's note for the portal and the voucher sheet ("" when none)."""
        return self.settings.config().venue.portal_text


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
