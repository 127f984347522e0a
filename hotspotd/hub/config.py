"""The hub's configuration file (hub.toml): one `[hub]` table, every option defined once.

The hub is another program than the appliance (it runs at the operator's, on PostgreSQL),
so it has its own small schema; it reuses the appliance's converters and error type, so a
bad value reads the same: one line naming file, section and key. The DSN is a secret: it
may come from `dsn_file` (a 0600 file) or HOTSPOTD_HUB_DSN instead of the file.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from hotspotd.config.schema import (
    BOOL,
    NON_EMPTY_STR,
    PORT,
    POSITIVE_INT,
    STR,
    ConfigError,
    Converter,
    enum,
)


@dataclass(frozen=True)
class HubConfig:
    dsn: str
    host: str = "0.0.0.0"
    port: int = 8443
    tls_cert_file: str = ""
    tls_key_file: str = ""
    insecure_http: bool = False
    log_level: str = "info"
    threads: int = 16
    stale_after_seconds: int = 300
    utc_offset_minutes: int = 180
    session_hours: int = 12
    login_attempts: int = 5

    def __repr__(self) -> str:  # the DSN may hold a password
        return f"HubConfig(host={self.host!r}, port={self.port})"


CONVERTERS: dict[str, tuple[Converter, str]] = {
    "dsn": (NON_EMPTY_STR, "PostgreSQL connection string (libpq), e.g. \"host=/run/postgresql"
            " dbname=hotspotd_hub\". Secret: or dsn_file, or HOTSPOTD_HUB_DSN."),
    "host": (NON_EMPTY_STR, "Listen address of the hub (appliances' batches, owner UI)."),
    "port": (PORT, "Listen port; 0 picks a free one."),
    "tls_cert_file": (STR, "PEM certificate (chain) the hub serves HTTPS with."),
    "tls_key_file": (STR, "PEM private key of tls_cert_file (mode 0600)."),
    "insecure_http": (BOOL, "Serve plain HTTP. Allowed only when host is a loopback address"
                      " (a TLS-terminating proxy in front on the same machine)."),
    "log_level": (enum("debug", "info", "warning", "error"), "Log level."),
    "threads": (POSITIVE_INT, "Requests served at once; more connections wait."),
    "stale_after_seconds": (POSITIVE_INT, "An appliance not heard from this long is"
                            " flagged stale in the owner UI."),
    "utc_offset_minutes": (Converter("an integer -720..840", int,
                                     lambda number: -720 <= number <= 840, int),
                           "The operator's time zone (minutes east of UTC): where days,"
                           " weeks and months of the money figures begin."),
    "session_hours": (POSITIVE_INT, "An owner UI login lasts this long."),
    "login_attempts": (POSITIVE_INT, "Wrong passwords allowed from one address per 15"
                       " minutes."),
}


def load_hub_config(path: Path, env: Mapping[str, str] = os.environ) -> HubConfig:
    """Read and check `path`; raises ConfigError naming file, section and key."""
    origin = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {' '.join(str(exc).split())}") from None
    unknown = set(data) - {"hub"}
    if unknown:
        raise ConfigError(f"{origin}: unknown section [{sorted(unknown)[0]}] (only [hub])")
    table = dict(data.get("hub", {}))
    if "dsn_file" in table:
        if "dsn" in table:
            raise ConfigError(f"{origin}: [hub] dsn: set either dsn or dsn_file, not both")
        table["dsn"] = _read_secret_file(origin, Path(str(table.pop("dsn_file"))), path.parent)
    if "HOTSPOTD_HUB_DSN" in env:
        table["dsn"] = env["HOTSPOTD_HUB_DSN"]
    values = {name: _convert(origin, name, value) for name, value in table.items()}
    if "dsn" not in values:
        raise ConfigError(f"{origin}: [hub] dsn: required (or dsn_file, or HOTSPOTD_HUB_DSN)")
    config = HubConfig(**values)
    _check_transport(origin, config)
    return config


def _convert(origin: str, name: str, value: Any) -> Any:
    if name not in CONVERTERS:
        known = ", ".join(field.name for field in fields(HubConfig))
        raise ConfigError(f"{origin}: [hub] {name}: unknown key (known: {known}, dsn_file)")
    converter = CONVERTERS[name][0]
    try:
        return converter.check(value)
    except (TypeError, ValueError, KeyError):
        shown = "***" if name == "dsn" else repr(value)
        raise ConfigError(f"{origin}: [hub] {name}: expected {converter.expected}, got"
                          f" {shown}") from None


def _read_secret_file(origin: str, file: Path, base: Path) -> str:
    file = file if file.is_absolute() else base / file
    try:
        if file.stat().st_mode & 0o077:
            raise ConfigError(f"{origin}: [hub] dsn_file: {file} is readable by group or"
                              " others; chmod 600 it")
        return file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{origin}: [hub] dsn_file: cannot read {file}: "
                          f"{exc.strerror or exc}") from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_transport(origin: str, config: HubConfig) -> None:
    """HTTPS, or plain HTTP on loopback only when asked for in so many words."""
    if config.insecure_http:
        if not is_loopback(config.host):
            raise ConfigError(f"{origin}: [hub] insecure_http: allowed only with a loopback"
                              f" host, not {config.host!r}: appliance keys would cross the"
                              " network in clear")
        return
    for name in ("tls_cert_file", "tls_key_file"):
        if not getattr(config, name):
            raise ConfigError(f"{origin}: [hub] {name}: required for HTTPS (or insecure_http"
                              " = true on a loopback host)")
