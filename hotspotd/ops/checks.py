"""`hotspotd check`: every link the appliance depends on, one line each, with the fix.

Each check returns a `CheckResult` (name, ok, what was found, how to fix it). Checks that
need a valid configuration are skipped (and say so) when the configuration itself fails.

`hotspotd check` judges the configuration as the one a venue goes live with: an embedded
simulator backend (`[daraja]` or `[router] backend = "simulator"`) FAILs it, since with it
payments or the router are make-believe. Simulators are for `hotspotd demo` (which never
runs these checks) and for tests; `hotspotd run` still starts them, saying so in its log.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import socket
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

import requests

from hotspotd.config import Config, ConfigError, check_production, load_config
from hotspotd.config.overrides import apply_overrides, stored_overrides
from hotspotd.daraja.client import DarajaClient
from hotspotd.daraja.errors import DarajaAuthError, DarajaError
from hotspotd.mpesa.channels import load_channels
from hotspotd.ops.lock import is_locked
from hotspotd.radius.coa import CoaClient, SessionRef
from hotspotd.router.drift import Drift, router_drift
from hotspotd.router.gateway import RouterError, RouterGateway, RouterLoginFailed
from hotspotd.router.script import ScriptInputs, inputs_from
from hotspotd.secretbox import SecretBox, SecretBoxError
from hotspotd.store.db import Database
from hotspotd.store.migrations import available_migrations

MAX_CLOCK_SKEW = 60.0
EARLIEST_SANE = 1_735_689_600.0  # 2025-01-01: a Pi without RTC boots in 1970 until NTP
NAT_FIX = ("on the router, keep customer traffic to this appliance out of masquerade (as"
           " `hotspotd routeros-script` does): {command}")
SETUP_FIX = "on the router (as `hotspotd routeros-script` sets it): {command}"


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        status = "OK  " if self.ok else "FAIL"
        text = f"{status} {self.name}: {self.detail}"
        return text if self.ok or not self.fix else f"{text} -- fix: {self.fix}"


def run_checks(config_path: Path, *, env: dict[str, str] | None = None) -> list[CheckResult]:
    try:
        config = load_config(config_path, **({"env": env} if env is not None else {}))
        check_production(config)
    except ConfigError as exc:
        return [CheckResult("config", False, str(exc),
                            f"edit {config_path} (every option: hotspotd.example.toml)")]
    results = [CheckResult("config", True, f"{config_path} loaded")]
    config, applied = with_owner_settings(config)
    if applied:
        results.append(CheckResult("owner settings", True, "the owner UI's Settings override"
                                   f" the file for: {', '.join(sorted(applied))}"))
    for check in (check_backends, check_key_file, check_database, check_daraja,
                  check_daraja_channels, check_router, check_radius_ports, check_coa,
                  check_clock):
        try:
            found = check(config)
        except Exception as exc:  # a check must never crash the others
            found = CheckResult(check.__name__[6:], False, f"check crashed: {exc!r}")
        results += found if isinstance(found, list) else [found]
    return results + check_more_routers(config)


def check_more_routers(config: Config) -> list[CheckResult]:
    """The API and CoA checks for each [routers.<name>], named after the router."""
    results: list[CheckResult] = []
    for router in config.routers()[1:]:
        alone = config.for_router(router)
        for check in (check_router, check_coa):
            try:
                found = check(alone)
            except Exception as exc:  # a check must never crash the others
                found = CheckResult(check.__name__[6:], False, f"check crashed: {exc!r}")
            results += [dataclasses.replace(result, name=f"{router.name}: {result.name}")
                        for result in (found if isinstance(found, list) else [found])]
    return results


def with_owner_settings(config: Config) -> tuple[Config, set[str]]:
    """The configuration the daemon runs with: the file's, with the Settings the owner saved
    in the web UI (read-only from the database; nothing applied when it cannot be read)."""
    path = Path(config.database.path)
    if not path.exists():
        return config, set()
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            rows = conn.execute("SELECT key, value, secret FROM settings").fetchall()
        finally:
            conn.close()
        overrides = stored_overrides(
            rows, lambda: SecretBox.from_key_file(Path(config.security.key_file)))
    except (sqlite3.DatabaseError, SecretBoxError, OSError):
        return config, set()  # an old schema or no key: the database/key checks say why
    return apply_overrides(config, overrides), set(overrides)


def check_backends(config: Config) -> CheckResult:
    """Real backends only: an embedded simulator has no place in a venue's configuration."""
    simulated = [f'[{section}] backend = "simulator"' for section in ("daraja", "router")
                 if getattr(config, section).backend == "simulator"]
    if not simulated:
        return CheckResult("backends", True, "Daraja and RouterOS (no simulator)")
    return CheckResult("backends", False, " and ".join(simulated) + ": payments or the"
                       " router would be simulated, not real",
                       'set [daraja] backend = "daraja" (with the app\'s keys) and [router]'
                       ' backend = "routeros"; to try hotspotd without them, run'
                       " `hotspotd demo`")


def check_key_file(config: Config) -> CheckResult:
    path = Path(config.security.key_file)
    try:
        SecretBox.from_key_file(path)
    except (SecretBoxError, OSError) as exc:
        return CheckResult("key file", False, str(exc),
                           "hotspotd init creates it; or chmod 600 and chown it to the service")
    return CheckResult("key file", True, f"{path} (0600)")


def check_database(config: Config) -> CheckResult:
    path = Path(config.database.path)
    if not path.exists():
        writable = path.parent.is_dir() and _writable(path.parent)
        return CheckResult("database", writable, f"{path} not created yet" +
                           (" (created at first start)" if writable else ""),
                           f"create {path.parent} writable by the service (hotspotd init)")
    newest = max(m.version for m in available_migrations())
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        integrity = conn.execute("PRAGMA quick_check").fetchone()[0]
        version = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] or 0
    except sqlite3.DatabaseError as exc:
        return CheckResult("database", False, f"{path}: {exc}",
                           "restore the newest backup: hotspotd restore FILE")
    finally:
        conn.close()
    if integrity != "ok":
        return CheckResult("database", False, f"integrity check failed: {integrity}",
                           "stop the service and restore the newest backup (hotspotd restore)")
    if version > newest:
        return CheckResult("database", False, f"schema {version} is newer than this hotspotd"
                           f" ({newest})", "upgrade hotspotd (pip install -U hotspotd)")
    if version < newest:
        return CheckResult("database", True, f"schema {version}; migrations up to {newest}"
                           " will run at the next start")
    return CheckResult("database", True, f"{path}: integrity ok, schema {version} (current)")


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


def check_daraja(config: Config) -> CheckResult:
    cfg = config.daraja
    if cfg.backend == "simulator":
        return CheckResult("daraja", True, "embedded simulator (no Safaricom account used)")
    client = DarajaClient(base_url=cfg.base_url, consumer_key=cfg.consumer_key,
                          consumer_secret=cfg.consumer_secret, shortcode=cfg.shortcode,
                          passkey=cfg.passkey, transaction_type=cfg.transaction_type,
                          till_number=cfg.till_number, timeout=cfg.timeout_seconds)
    result = _oauth("daraja", cfg.base_url, client)
    if not result.ok and "OAuth refused" in result.detail:
        return CheckResult("daraja", False, result.detail,
                           "check [daraja] consumer_key/consumer_secret belong to this"
                           " environment (sandbox keys fail in production and back)")
    if result.ok:
        return CheckResult("daraja", True, f"{result.detail} (shortcode {cfg.shortcode})")
    return CheckResult("daraja", False, result.detail,
                       "check the internet uplink, DNS and [daraja] base_url")


def check_daraja_channels(config: Config) -> list[CheckResult]:
    """OAuth for every Daraja channel stored (encrypted) in the database by the owner UI."""
    path = Path(config.database.path)
    if not path.exists():
        return []
    db = Database(path)
    try:
        if not db.query_one("SELECT 1 FROM sqlite_master WHERE name = 'daraja_channels'"):
            return []
        channels = load_channels(db, SecretBox.from_key_file(Path(config.security.key_file)))
    except SecretBoxError as exc:
        return [CheckResult("daraja channels", False, str(exc),
                            "the key file must be the one the channels were saved with")]
    finally:
        db.close()
    results = []
    for channel in channels:
        result = _oauth(f"daraja channel {channel.name}", channel.base_url, DarajaClient(
            base_url=channel.base_url, consumer_key=channel.consumer_key,
            consumer_secret=channel.consumer_secret, shortcode=channel.shortcode,
            passkey=channel.passkey, transaction_type=channel.kind,
            till_number=channel.till_number, timeout=config.daraja.timeout_seconds))
        results.append(result)
    return results


def _oauth(name: str, base_url: str, client: DarajaClient) -> CheckResult:
    try:
        client.check_credentials()
    except DarajaAuthError as exc:
        return CheckResult(name, False, f"OAuth refused at {base_url}: {exc}",
                           "re-enter this channel's consumer key/secret in the owner UI")
    except DarajaError as exc:
        return CheckResult(name, False, f"{base_url}: {exc}", "check the uplink and DNS")
    return CheckResult(name, True, f"OAuth token obtained from {base_url}")


def check_router(config: Config) -> list[CheckResult]:
    """API login (identity, version), then every difference between the router's set-up
    and what `hotspotd routeros-script` sets (`router.drift`; NAT judged by `router.nat`)."""
    cfg = config.router
    if cfg.backend == "simulator":
        return [CheckResult("router", True, "embedded MikroTik simulator")]
    gateway = RouterGateway(host=cfg.host, port=cfg.api_port, user=cfg.user,
                            password=cfg.password, use_tls=cfg.use_tls,
                            timeout=cfg.timeout_seconds, tls_verify=cfg.tls_verify,
                            tls_ca_file=cfg.tls_ca_file)
    try:
        identity, version = gateway.identity(), gateway.version()
        setup = check_router_setup(gateway, inputs_from(config))
    except RouterLoginFailed as exc:
        return [CheckResult("router", False, f"API login as {cfg.user!r} refused: {exc}",
                            "check [router] user/password; the user's group needs the api,"
                            " read and write policies")]
    except RouterError as exc:
        return [CheckResult("router", False, f"{cfg.host}:{cfg.api_port}: {exc}",
                            "check the address, `/ip service enable api` and the firewall")]
    finally:
        gateway.close()
    return [CheckResult("router", True, f"{identity!r} RouterOS {version} at"
                        f" {cfg.host}:{cfg.api_port}"), *setup]


def check_router_setup(gateway: RouterGateway, inputs: ScriptInputs) -> list[CheckResult]:
    """The router's set-up against the script's (raises RouterError when unreachable)."""
    return [CheckResult(found.name, found.ok, found.detail, _setup_fix(found))
            for found in router_drift(gateway.setup_rows, inputs)]


def _setup_fix(found: Drift) -> str:
    if found.ok:
        return ""
    if found.name == "router nat":
        return NAT_FIX.format(command=found.fix)
    return SETUP_FIX.format(command=found.fix)


def check_radius_ports(config: Config) -> CheckResult:
    cfg = config.radius
    running = is_locked(Path(config.database.path).parent)
    busy = [port for port in (cfg.auth_port, cfg.acct_port) if port and _udp_busy(cfg.host,
                                                                                  port)]
    if not busy:
        return CheckResult("radius ports", True, f"UDP {cfg.auth_port}/{cfg.acct_port} free"
                           " (bound at start)" if not running else "bound")
    if running:
        return CheckResult("radius ports", True, f"UDP {busy} bound by the running hotspotd")
    return CheckResult("radius ports", False, f"UDP {busy} on {cfg.host} used by another"
                       " program", "stop it (e.g. systemctl disable --now freeradius)")


def _udp_busy(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def check_coa(config: Config) -> CheckResult:
    cfg = config.router
    if cfg.backend == "simulator":
        return CheckResult("coa", True, "embedded MikroTik simulator")
    port = getattr(cfg, "coa_port", 3799)
    client = CoaClient(host=cfg.host, port=port,
                       secret=(cfg.radius_secret or config.radius.secret).encode(),
                       timeout=float(getattr(cfg, "coa_timeout_seconds", 1.0) or 1.0))
    outcome = client.disconnect(SessionRef("hotspotd-check", "192.0.2.1"))
    if not outcome.answered:
        return CheckResult("coa", False, f"no answer from {cfg.host}:{port}",
                           f"on the router: /radius incoming set accept=yes port={port};"
                           " same RADIUS secret")
    return CheckResult("coa", True, f"{cfg.host}:{port} answers ({outcome})")


def check_clock(config: Config, *, fetch: Callable[[str], str | None] | None = None
                ) -> CheckResult:
    now = time.time()
    if now < EARLIEST_SANE:
        return CheckResult("clock", False, time.strftime("system time is %Y-%m-%d",
                                                         time.gmtime(now)),
                           "enable NTP: timedatectl set-ntp true (STK passwords need the time)")
    if config.daraja.backend == "simulator":
        return CheckResult("clock", True, "system time plausible (simulator: not compared)")
    date = (fetch or _http_date)(config.daraja.base_url)
    if date is None:
        return CheckResult("clock", False, "could not read the time from Daraja",
                           "check the uplink; then timedatectl status")
    skew = now - parsedate_to_datetime(date).timestamp()
    if abs(skew) > MAX_CLOCK_SKEW:
        return CheckResult("clock", False, f"off by {skew:+.0f} s from Daraja's clock",
                           "timedatectl set-ntp true; check that NTP (UDP 123) is allowed")
    return CheckResult("clock", True, f"within {abs(skew):.0f} s of Daraja's clock")


def _http_date(url: str) -> str | None:
    try:
        return requests.head(url, timeout=10).headers.get("Date")
    except requests.RequestException:
        return None
