"""Wire the appliance together in one place: config → store → backends → services → listeners.

`Appliance(config).start()` brings up, in order: the database (migrated), the Daraja side
(the real API, or the embedded simulator when `[daraja] backend = "simulator"`), the RADIUS
server, the router side (a real RouterOS, or the embedded MikroTik simulator), the router
outbox, the web server and the scheduler. `stop()` takes them down in reverse.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from hotspotd import generated_secrets
from hotspotd.access.access import AccessPolicy
from hotspotd.access.access_view import AccessView
from hotspotd.admin.options import AdminOptions
from hotspotd.admin.selftest import live_probes
from hotspotd.admin.settings_store import SettingsStore
from hotspotd.config import Config, check_production
from hotspotd.daraja.budget import RequestBudget
from hotspotd.daraja.client import DarajaClient
from hotspotd.daraja.sources import SourcePolicy
from hotspotd.http_limits import ListenerCollector
from hotspotd.httpserver import ListenerLimits, ServedApp, bind_tcp
from hotspotd.hub.roaming import NetworkRecovery, NetworkVouchers
from hotspotd.hub.shipper import Shipper
from hotspotd.ledger import recovery, vouchers
from hotspotd.mpesa.c2b_verify import C2BVerifier
from hotspotd.mpesa.callback_intake import CallbackIntake, CallbackSettings
from hotspotd.mpesa.channel_clients import ChannelClients
from hotspotd.mpesa.channels import callback_tokens
from hotspotd.mpesa.pull import ChannelPulls
from hotspotd.mpesa.purchases import PurchaseService, SettlementPolicy
from hotspotd.mpesa.push_limits import PushGuard, PushLimits
from hotspotd.mpesa.push_queue import PushQueue
from hotspotd.ops.instrument import Instruments
from hotspotd.ops.lock import DataDirLock
from hotspotd.ops.metrics import build_registry
from hotspotd.ops.notifiers import AfricasTalkingSms, Notifier, build_notifier
from hotspotd.ops.runtime import ApplianceOps
from hotspotd.ops.sms_simulator import SmsSimulator
from hotspotd.radius.coa import CoaClient
from hotspotd.radius.server import RadiusServer
from hotspotd.router.fleet import (
    CoaSet,
    RouterSet,
    RouterSite,
    radius_client_of,
    simulator_host,
)
from hotspotd.router.gateway import RouterGateway
from hotspotd.router.outbox import RouterOutbox
from hotspotd.router.placement import DeviceLocator, neighbour_mac, no_neighbours
from hotspotd.secretbox import SecretBox
from hotspotd.store.db import Database
from hotspotd.web import create_app
from hotspotd.web.context import PortalOptions, WebContext, seconds_per_place_in_line

log = logging.getLogger(__name__)

RUNTIME_FILE = "runtime.json"


@dataclass(frozen=True)
class MpesaSide:
    """The M-Pesa pieces, as built by `Appliance._build_mpesa`."""

    purchases: PurchaseService
    callbacks: CallbackSettings
    pull: ChannelPulls  # run on a schedule when [c2b] pull_interval_seconds is set
    queue: PushQueue


class Appliance:
    """The whole daemon in one object. Build with a Config; `start()`, then `stop()`."""

    def __init__(self, config: Config, *, now: Callable[[], float] = time.time) -> None:
        self.config = generated_secrets.fill_config(config)
        self.now = now
        self.data_dir = Path(self.config.database.path).parent
        self._stoppers: list[Callable[[], None]] = []
        self.addresses: dict[str, Any] = {}
        self.daraja_simulator: Any = None
        self.router_simulator: Any = None
        self.started = threading.Event()
        self.admin_web: ServedApp | None = None  # the owner UI's own listener, if any

    def start(self) -> Appliance:
        check_production(self.config)
        self._stoppers.append(DataDirLock(self.data_dir).acquire().release)
        self.db = Database(self.config.database.path).open()
        self._stoppers.append(self.db.close)
        self.settings = SettingsStore(self.db, self.config,  # the owner UI's Settings page
                                      key_file=Path(self.config.security.key_file))
        self.config = self.settings.config()  # stored settings override the file
        if self.settings.stored_keys():
            log.info("owner UI settings override the file: %s",
                     ", ".join(sorted(self.settings.stored_keys())))
        self.registry = build_registry()  # /metrics: the instruments now, ops' collector later
        self.instruments = Instruments(self.registry)
        self.scheduler = BackgroundScheduler(timezone="UTC", job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 30})
        self._scheduling = threading.Lock()  # see _stop_scheduler
        self._scheduling_closed = False
        self.started_at = time.time()
        daraja = self.daraja = self.instruments.daraja(self._start_daraja())
        self._start_radius()
        router = self.outbox_router = self._start_routers()
        self.outbox = RouterOutbox(
            self.db, router, mac_password=self.config.radius.mac_password, now=self.now,
            coa=CoaSet({site.radius_client: self.instruments.coa(site.coa)
                        for site in self.routers}, self.instruments.coa(self.coa_client)),
            enforce_interval=self.config.router.enforce_interval_seconds,
            reconcile_interval=self.config.router.reconcile_interval_seconds,
            before_apply=self.access_view.refresh_changed)
        self.ops = ApplianceOps(  # health, /metrics, backups, retention, alerts
            self.config, self.db, data_dir=self.data_dir, now=self.now, registry=self.registry,
            notifier=self._notifier(), radius=self.radius, outbox=self.outbox,
            scheduler=self.scheduler, budget=daraja.budget)
        self._start_web(daraja)
        self.outbox.start()
        self._stoppers.append(self.outbox.stop)
        self._start_scheduler()
        self._stoppers.append(self.mpesa.queue.start().stop)  # purchases waiting in line
        if self.config.hub.enabled:  # ship the ledger to the operator's hub (docs/HUB.md)
            box = SecretBox.from_key_file(Path(self.config.security.key_file))
            self._stoppers.append(Shipper(self.config.hub, self.db, box,
                                          clock=self.now).start().stop)
        self.addresses["database"] = str(self.config.database.path)
        generated_secrets.write_private_json(self.data_dir / RUNTIME_FILE, self.addresses)
        self.started.set()
        log.info("hotspotd is up: portal %s", self.addresses["portal_url"])
        return self

    def stop(self) -> None:
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                stopper()
            except Exception:  # keep stopping the rest; nothing here holds money
                log.exception("error while stopping %s", stopper)

    # -- pieces -------------------------------------------------------------------------

    def _start_daraja(self) -> DarajaClient:
        cfg = self.config.daraja
        base_url = cfg.base_url
        if cfg.backend == "simulator":
            from hotspotd.simulators.daraja import DarajaSimulator

            sim = DarajaSimulator(consumer_key=cfg.consumer_key,
                                  consumer_secret=cfg.consumer_secret, shortcode=cfg.shortcode,
                                  passkey=cfg.passkey, till_number=cfg.till_number,
                                  approve_delay=self.config.simulators.approve_delay_seconds)
            sim.start(self.config.simulators.host, self.config.simulators.daraja_port)
            self._stoppers.append(sim.stop)
            self.daraja_simulator = sim
            base_url = sim.url
            self.addresses.update(daraja_url=sim.url, phone_url=sim.phone_url)
            log.info("Daraja backend: embedded simulator at %s", sim.url)
        else:
            log.info("Daraja backend: %s", base_url)
        return DarajaClient(base_url=base_url, consumer_key=cfg.consumer_key,
                            consumer_secret=cfg.consumer_secret, shortcode=cfg.shortcode,
                            passkey=cfg.passkey, transaction_type=cfg.transaction_type,
                            till_number=cfg.till_number, timeout=cfg.timeout_seconds,
                            budget=RequestBudget(per_minute=float(cfg.requests_per_minute)),
                            push_max_wait=cfg.push_max_wait_seconds)

    def _start_radius(self) -> None:
        cfg = self.config.radius
        view = AccessView(self.db).start()  # RADIUS answers entitled devices from memory
        self._stoppers.append(view.stop)
        self.access_view = view
        self.settings.subscribe(  # a plan's data cap or idle timeout edited by the owner
            lambda keys: view.reload_all() if "plans" in keys else None)
        self.access = AccessPolicy(self.db, mac_password=cfg.mac_password,
                                   interim_interval=cfg.interim_interval_seconds, now=self.now,
                                   view=view, voucher_attempts=self.config.portal.voucher_attempts,
                                   attempt_window=float(self.config.portal.attempt_window_seconds))
        self._stoppers.append(self.access.stop)  # after RADIUS stops: write queued vouchers
        clients = {address: cfg.secret.encode() for address in cfg.clients}
        for index, router in enumerate(self.config.routers()[1:], start=1):  # the others
            clients[radius_client_of(self.config, index, router)] = (
                router.radius_secret or cfg.secret).encode()
        self.radius = RadiusServer(
            host=cfg.host, auth_port=cfg.auth_port, acct_port=cfg.acct_port, clients=clients,
            authorize=self.instruments.timed("auth", self.access.authorize),
            record_accounting=self.instruments.timed("acct", self.access.record_accounting),
            interim_interval=cfg.interim_interval_seconds,
            require_message_authenticator=cfg.require_message_authenticator)
        self.radius.start()
        self._stoppers.append(self.radius.stop)
        host = self.radius.auth_address[0]
        self.addresses["radius"] = {
            "host": host, "auth_port": self.radius.auth_address[1],
            "acct_port": self.radius.acct_address[1], "secret": cfg.secret,
            "mac_password": cfg.mac_password}
        log.info("RADIUS listening on %s auth %s acct %s", host, self.radius.auth_address[1],
                 self.radius.acct_address[1])

    def _start_routers(self) -> RouterSet:
        """Every router of the venue ([router], then [routers.<name>]): its API client, a
        second connection for placing portal requests, its CoA client; the embedded
        simulator for a "simulator" backend. The first router's pieces keep their names."""
        self.routers = [self._start_router(index, cfg)
                        for index, cfg in enumerate(self.config.routers())]
        first = self.routers[0]
        self.router_gateway, self.coa_client = first.gateway, first.coa
        self.placement_gateway, self._coa_address = first.placement, first.coa_address
        self.router_simulator = first.simulator
        self.addresses["router"] = first.address
        if len(self.routers) > 1:
            self.addresses["routers"] = {site.name: site.address for site in self.routers}
        cfg = self.config.web
        self.locator = DeviceLocator(  # which device a portal request comes from
            self._host_at_any, router_addresses={site.api_host for site in self.routers},
            neighbours=neighbour_mac if cfg.neighbour_table else no_neighbours,
            ttl=cfg.host_cache_seconds)
        self.settings.subscribe(self._router_settings_changed)
        return RouterSet({site.name: site.gateway for site in self.routers})

    def _start_router(self, index: int, cfg: Any) -> RouterSite:
        if cfg.backend == "simulator" and not cfg.password:  # the demo's: one credential
            cfg = dataclasses.replace(cfg, user=self.config.router.user,
                                      password=self.config.router.password)
        host, port, coa_address, simulator = cfg.host, cfg.api_port, (cfg.host, cfg.coa_port), None
        if cfg.backend == "simulator":
            simulator = self._router_simulator(index, cfg)
            host, port = simulator.api_address
            coa_address = simulator.coa_address
            log.info("router %s: embedded MikroTik simulator, API at %s:%s", cfg.name, host,
                     port)
        else:
            log.info("router %s: RouterOS API at %s:%s", cfg.name, host, port)
        secret = (cfg.radius_secret or self.config.radius.secret).encode()
        coa = CoaClient(host=coa_address[0], port=coa_address[1], secret=secret,
                        timeout=cfg.coa_timeout_seconds, retries=1)
        return RouterSite(cfg.name, self._gateway(cfg, host, port), self._gateway(cfg, host, port),
                          coa, coa_address, simulator, host, {
                              "name": cfg.name, "api_host": host, "api_port": port,
                              "user": cfg.user, "password": cfg.password,
                              "coa_port": coa_address[1]},
                          radius_client_of(self.config, index, cfg))

    def _router_simulator(self, index: int, cfg: Any) -> Any:
        """The embedded router number `index`: the first on [simulators] host, the others
        on the next loopback addresses (a router is known by the address its RADIUS comes
        from), each with the set-up `hotspotd routeros-script` leaves."""
        from hotspotd.simulators.mikrotik import MikrotikSimulator

        radius, sims = self.addresses["radius"], self.config.simulators
        radius_host = "127.0.0.1" if radius["host"] in ("0.0.0.0", "") else radius["host"]
        sim = MikrotikSimulator(api_user=cfg.user, api_password=cfg.password,
                                radius_host=radius_host, radius_auth_port=radius["auth_port"],
                                radius_acct_port=radius["acct_port"],
                                radius_secret=cfg.radius_secret or self.config.radius.secret,
                                coa_port=sims.router_coa_port if index == 0 else 0,
                                identity=f"hotspotd-sim-{cfg.name}",
                                appliance_address=cfg.appliance_address,
                                setup=_simulated_setup(self.config))
        sim.start(simulator_host(sims.host, index), sims.router_api_port if index == 0 else 0)
        self._stoppers.append(sim.stop)
        self._serve_router_page(sim, "router_status_url" if index == 0
                                else f"router_status_url_{cfg.name}")
        return sim

    def _gateway(self, cfg: Any, host: str, port: int) -> RouterGateway:
        """A RouterOS API client with its own connection (closed at stop)."""
        gateway = RouterGateway(host=host, port=port, user=cfg.user, password=cfg.password,
                                use_tls=cfg.use_tls, timeout=cfg.timeout_seconds,
                                tls_verify=cfg.tls_verify, tls_ca_file=cfg.tls_ca_file)
        self._stoppers.append(gateway.close)
        return gateway

    def _host_at_any(self, ip: str) -> str | None:
        """The device at `ip` as the routers' host tables see it: the one router that
        lists the address; nobody when two list it for different devices."""
        found = {mac for site in self.routers if (mac := site.placement.host_at(ip))}
        return found.pop() if len(found) == 1 else None

    def _serve_router_page(self, sim: Any, key: str) -> None:
        """The simulated router's page: active hosts, and devices joining the WiFi."""
        page = ServedApp(sim.status_app(), self.config.simulators.host, 0, threads=2,
                         name="router-status").start()
        self._stoppers.append(page.stop)
        self.addresses[key] = page.url + "/"

    def _rate_changed(self, keys: set[str], portal: PortalOptions) -> None:
        """The owner changed the Daraja rate in Settings: the budget paces every request
        from now on, and the portal's wait estimate follows."""
        if "daraja.requests_per_minute" not in keys:
            return
        rate = self.settings.config().daraja.requests_per_minute
        self.daraja.budget.set_rate(rate)
        portal.seconds_per_place = seconds_per_place_in_line(rate)
        log.info("Daraja budget set to %s requests per minute in Settings", rate)

    def _router_settings_changed(self, keys: set[str]) -> None:
        """The owner changed the router connection in Settings: reconnect to a real router;
        the embedded simulator keeps its address and credentials until a restart."""
        changed = {key for key in keys if key.startswith("router.")}
        if not changed:
            return
        if self.config.router.backend != "routeros":
            self.settings.restart_needed |= changed
            return
        cfg = self.settings.config().router
        for gateway in (self.router_gateway, self.placement_gateway):
            gateway.reconfigure(host=cfg.host, port=cfg.api_port, user=cfg.user,
                                password=cfg.password, use_tls=cfg.use_tls)
        self.locator.router_addresses = {cfg.host, *(s.api_host for s in self.routers[1:])}
        self.coa_client.host, self.coa_client.port = cfg.host, cfg.coa_port
        log.info("router connection changed in Settings: API %s:%s, CoA port %s",
                 cfg.host, cfg.api_port, cfg.coa_port)

    def _start_web(self, daraja: DarajaClient) -> None:
        cfg = self.config.web
        sock = bind_tcp(cfg.host, cfg.port)
        host, port = sock.getsockname()[:2]
        local_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        base = cfg.public_url.rstrip("/") or f"http://{local_host}:{port}"
        self._build_mpesa(daraja, base)
        interrupted = self.purchases.recover_after_restart()
        if interrupted:
            log.warning("%s payment(s) interrupted by the last stop were closed as failed",
                        interrupted)
        portal = self.portal_options = self._portal_options()
        self.settings.subscribe(lambda keys: self._rate_changed(keys, portal))
        context = self.web_context = WebContext(db=self.db, purchases=self.purchases,
                             callback_token=cfg.callback_token, locator=self.locator,
                             web_sources=SourcePolicy.from_config((), cfg.trusted_proxies),
                             now=self.now,
                             admin=self._admin_options(), wake_router=self.outbox.wake,
                             self_test=self._self_test,
                             portal=portal, health=self.ops.health,
                             metrics=self.ops.metrics, mpesa=self.mpesa.callbacks,
                             settings=self.settings, **self._roaming())
        self.web = ServedApp(create_app(context), sock=sock, name="web",
                             keep_forwarded_for=bool(self.config.daraja.trusted_proxies
                                                       or cfg.trusted_proxies),
                             limits=ListenerLimits.from_config(self.config)).start()
        self._stoppers.append(self.web.stop)
        self.registry.register(ListenerCollector(lambda: (self.web, self.admin_web)))
        self.addresses["portal_url"] = f"http://{local_host}:{port}/"
        self._start_admin(context)  # the management side (issue 12)
        log.info("web listening on %s:%s (callbacks %s)", host, port,
                 "via " + cfg.public_url if cfg.public_url else "local only")

    def _build_mpesa(self, daraja: DarajaClient, callback_base: str) -> None:
        """The M-Pesa side: purchases with their abuse limits and line, the callback intake
        with its source policy and channel tokens, Pull Transactions, C2B verification."""
        config, db, now, schedule = self.config, self.db, self.now, self._run_later
        on_grant, token = self.outbox.wake, config.web.callback_token
        channels = ChannelClients(db, daraja, default_token=token, callback_base=callback_base,
                                  key_file=Path(config.security.key_file),
                                  simulator=self.daraja_simulator, wrap=self.instruments.daraja)
        settlement = config.settlement
        policy = SettlementPolicy(
            inline_query_delays=tuple(settlement.inline_query_delays),
            query_backoff=tuple(settlement.query_backoff_seconds),
            pending_expiry=float(settlement.pending_expiry_seconds),
            queue_max_wait=float(settlement.queue_max_seconds),
            reconcile_wait=0.8 * settlement.reconcile_interval_seconds,
            account_reference=config.daraja.account_reference)
        in_line = threading.Event()  # set when a payment joins the line: wakes the worker
        purchases = self.purchases = PurchaseService(
            db, daraja, channels=channels, policy=policy,
            schedule=schedule, on_grant=on_grant, now=now,
            guard=PushGuard(db, PushLimits.from_config(config.limits), now),
            on_queued=in_line.set)
        pulls = ChannelPulls(db, channels, on_grant=on_grant, now=now,
                             nominated_number=config.c2b.pull_nominated_number)
        verifier = C2BVerifier(db, pulls, schedule=schedule, on_grant=on_grant, now=now,
                               within=float(config.c2b.verify_within_seconds))
        schedule(1.0, verifier.verify_due)  # confirmations still waiting from before a stop
        callbacks = CallbackSettings(
            CallbackIntake(db, purchases, daraja, schedule=schedule, now=now),
            channel_tokens={token: "default"} | callback_tokens(
                db, Path(config.security.key_file)),
            sources=SourcePolicy.from_config(config.daraja.callback_allowlist,
                                             config.daraja.trusted_proxies),
            c2b_validation=config.c2b.validation, on_grant=on_grant, c2b_verifier=verifier)
        queue = PushQueue(db, purchases, budget=daraja.budget, wake=in_line, now=now)
        self.mpesa = MpesaSide(purchases, callbacks, pulls, queue)

    def _roaming(self) -> dict[str, Callable[..., Any]]:
        """The portal's voucher and recovery forms: this venue's codes and payments; with a
        hub, every venue's of the network (docs/HUB.md "Roaming")."""
        if not self.config.hub.enabled:
            return {"redeem_voucher": functools.partial(vouchers.redeem, self.db),
                    "recover_time": functools.partial(recovery.recover_time, self.db)}
        box = SecretBox.from_key_file(Path(self.config.security.key_file))
        return {"redeem_voucher": NetworkVouchers(self.db, box).redeem,
                "recover_time": NetworkRecovery(self.db, box).recover}

    def _notifier(self) -> Notifier:
        """Who tells the owner (alerts) and the customer (receipts): the configured backend,
        or for the demo Africa's Talking simulated in-process, over HTTP."""
        if self.config.alerts.backend != "sms-simulator":
            return build_notifier(self.config)
        key = secrets.token_urlsafe(18)
        self.sms_simulator = SmsSimulator(username="sandbox", api_key=key)
        served = ServedApp(self.sms_simulator.app(), self.config.simulators.host, 0, threads=2,
                           name="sms-simulator").start()
        self._stoppers.append(served.stop)
        self.addresses["sms_url"] = served.url + "/"
        return AfricasTalkingSms(base_url=served.url, username="sandbox", api_key=key)

    def _portal_options(self) -> PortalOptions:
        """The captive portal's settings (issue 5)."""
        portal, daraja = self.config.portal, self.config.daraja
        till = daraja.transaction_type == "till"
        return PortalOptions(
            secret=self.config.web.callback_token,
            router_login_password=(self.config.radius.mac_password
                                   if portal.router_login_fallback else ""),
            payment_menu={"kind": "till" if till else "paybill",
                          "number": daraja.till_number if till else daraja.shortcode},
            public_url=self.config.web.public_url, long_poll_seconds=portal.long_poll_seconds,
            max_waiters=portal.live_waiters, recovery_attempts=portal.recovery_attempts,
            voucher_attempts=portal.voucher_attempts,
            attempt_window_seconds=float(portal.attempt_window_seconds),
            seconds_per_place=seconds_per_place_in_line(daraja.requests_per_minute))

    def _self_test(self) -> list[Any]:
        """The owner UI's self-test against the running config (with the owner's Settings)."""
        return live_probes(self.settings.config(), radius=self.radius.stats,
                           placed=self.locator.stats, gateway=self.router_gateway,
                           daraja=self.daraja, started_at=self.started_at,
                           radius_ports=(self.radius.auth_address[1],
                                         self.radius.acct_address[1], self._coa_address[1]))

    def _admin_options(self) -> AdminOptions:
        cfg = self.config.admin
        key = generated_secrets.load_or_create(self.data_dir, ["admin.session_key",
                                                               "admin.metrics_token"])
        return AdminOptions(secret_key=key["admin.session_key"],
                            utc_offset_minutes=cfg.utc_offset_minutes,
                            login_attempts=cfg.login_attempts,
                            lockout_seconds=cfg.lockout_seconds,
                            session_hours=cfg.session_hours,
                            public_url=self.config.web.public_url,
                            metrics_token=cfg.metrics_token or key["admin.metrics_token"],
                            own_listener=bool(cfg.host),
                            setup_code_hours=cfg.setup_code_hours)

    def _start_admin(self, context: WebContext) -> None:
        """The owner UI's own listener when `[admin] host` is set (else it shares the
        portal's), its address, and a one-time set-up code while no owner exists."""
        from hotspotd.admin.accounts import owner_exists
        from hotspotd.admin.setup_codes import issue_setup_code
        from hotspotd.web import create_admin_app

        cfg, options = self.config.admin, context.admin
        self.addresses["admin_url"] = self.addresses["portal_url"] + "admin/"
        self.addresses["metrics_token"] = options.metrics_token
        if options.own_listener:
            self.admin_web = ServedApp(
                create_admin_app(context), cfg.host, cfg.port, threads=4, name="admin",
                keep_forwarded_for=bool(self.config.web.trusted_proxies),
                limits=ListenerLimits.from_config(self.config)).start()
            self._stoppers.append(self.admin_web.stop)
            host = "127.0.0.1" if cfg.host in ("0.0.0.0", "::") else self.admin_web.host
            host = f"[{host}]" if ":" in host else host
            self.addresses["admin_url"] = f"http://{host}:{self.admin_web.port}/admin/"
        if owner_exists(self.db):
            return
        code = issue_setup_code(self.db, now=time.time(), hours=options.setup_code_hours,
                                issued_by="start")
        self.addresses["owner_setup_code"] = code
        log.warning("no owner account yet: create it at %ssetup with the one-time set-up"
                    " code %s (valid %s h, once)", self.addresses["admin_url"], code,
                    options.setup_code_hours)

    def _start_scheduler(self) -> None:
        self.scheduler.add_job(self.purchases.reconcile, "interval",
                               seconds=self.config.settlement.reconcile_interval_seconds,
                               id="reconcile-payments", next_run_time=datetime.now())
        if self.config.c2b.pull_interval_seconds:
            self.scheduler.add_job(self.mpesa.pull.run, "interval",
                                   seconds=self.config.c2b.pull_interval_seconds,
                                   id="pull-transactions", next_run_time=datetime.now())
        self.ops.schedule(self.scheduler)
        self.scheduler.start()
        # Let a running job (a settlement, a backup) finish before the database closes.
        self._stoppers.append(self._stop_scheduler)

    def _stop_scheduler(self) -> None:
        # APScheduler's shutdown(wait=True) holds its job-store lock while it waits for the
        # running jobs; a job that schedules a follow-up (add_job) would wait for that lock
        # for ever. So: no new jobs from here on (what they would have done is in the
        # database, and the reconciler picks it up at the next start), then wait. A backup
        # or the retention sweep in progress is abandoned, not waited for (ops.stopping).
        with self._scheduling:
            self._scheduling_closed = True
        self.ops.stopping.set()
        self.daraja.budget.close()  # a job waiting for a Daraja slot gives up now
        self.scheduler.shutdown(wait=True)

    def _run_later(self, delay: float, job: Callable[[], None]) -> None:
        with self._scheduling:
            if self._scheduling_closed:
                log.info("stopping: %s not scheduled (the reconciler resumes it at the next"
                         " start)", getattr(job, "__qualname__", job))
                return
            self.scheduler.add_job(job, "date",
                                   run_date=datetime.now() + timedelta(seconds=delay))


def _simulated_setup(config: Config) -> Any:
    """The embedded router's set-up: as `hotspotd routeros-script` leaves it for `config`."""
    from hotspotd.router.script import inputs_from
    from hotspotd.simulators.mikrotik.setup import RouterSetup

    inputs = inputs_from(config)
    return RouterSetup(portal_url=inputs.portal_url, interface=inputs.interface)
