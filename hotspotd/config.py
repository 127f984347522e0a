"""The one configuration schema of hotspotd: TOML file, environment, overrides.

Every option is defined once, in `SCHEMA`, with its default, converter and help. The
schema drives loading (`load_config`), the example file (`render_example`, also printed
by `python -m hotspotd.config`) and the production checks (`check_production`).

Precedence: defaults < TOML file < environment (`HOTSPOTD_<SECTION>_<NAME>`) < overrides
(what the CLI passes from its flags). Secrets may also come from a file readable only by
its owner: `<name>_file = "/path"` in the TOML, or `HOTSPOTD_<SECTION>_<NAME>_FILE`.
Every problem raises `ConfigError` with one line naming the file, section and key.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
import reprlib
import sys
import textwrap
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, make_dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

ENV_PREFIX = "HOTSPOTD_"
MASK = "***"
_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxlist = 60, 8


class ConfigError(Exception):
    """A configuration problem, described in one line naming file, section and key."""


# --- converters ----------------------------------------------------------------------


@dataclass(frozen=True)
class Converter:
    """Checks a TOML value (`check`); `parse_env` first turns an environment string into one.

    Bad input raises ValueError, TypeError or KeyError; the loader turns that into a
    ConfigError saying `expected <expected>, got <value>`.
    """

    expected: str
    kind: type | tuple[type, ...]  # the TOML types accepted; bool never counts as a number
    accept: Callable[[Any], bool] = lambda value: True
    parse_env: Callable[[str], Any] = str
    env_expected: str = ""
    cast: Callable[[Any], Any] = lambda value: value
    item: Converter | None = None  # for lists: the converter of each element

    def check(self, value: Any) -> Any:
        if isinstance(value, bool) is not (self.kind is bool) or not isinstance(value, self.kind):
            raise TypeError(value)
        if self.item is not None:
            value = tuple(self.item.check(element) for element in value)
        if not self.accept(value):
            raise ValueError(value)
        return self.cast(value)


_BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}

PORT = Converter("an integer 0-65535", int, lambda number: 0 <= number <= 65535, int)
POSITIVE_INT = Converter("a positive integer", int, lambda number: number >= 1, int)
NON_NEGATIVE_FLOAT = Converter("a non-negative number", (int, float),
                               lambda number: math.isfinite(number) and number >= 0, float,
                               cast=float)
BOOL = Converter("true or false", bool, parse_env=lambda text: _BOOL_WORDS[text.strip().lower()],
                 env_expected="true, false, yes, no, 1 or 0")
STR = Converter("a string", str)
NON_EMPTY_STR = Converter("a non-empty string", str, lambda text: bool(text.strip()))


def list_of(item: Converter, items: str, *, non_empty: bool = False) -> Converter:
    """A list (a tuple once loaded) of `item`; from the environment, comma-separated."""
    expected = f"a {'non-empty ' if non_empty else ''}list of {items}"

    def parse_env(text: str) -> list[Any]:
        return [item.parse_env(piece.strip()) for piece in text.split(",") if piece.strip()]

    return Converter(expected, (list, tuple), lambda value: bool(value) or not non_empty,
                     parse_env, expected + ", comma-separated", item=item)


STR_LIST = list_of(NON_EMPTY_STR, "non-empty strings")


def float_list(*, non_empty: bool = False) -> Converter:
    """A list of non-negative numbers (a tuple of floats once loaded)."""
    return list_of(NON_NEGATIVE_FLOAT, "non-negative numbers", non_empty=non_empty)


def enum(*choices: str) -> Converter:
    """One of the given strings."""
    return Converter("one of " + ", ".join(f'"{c}"' for c in choices), str, choices.__contains__)


def url(*, optional: bool = False) -> Converter:
    """An http:// or https:// URL with a host; the empty string too if `optional`."""
    return Converter(
        ("empty or " if optional else "") + "an http:// or https:// URL", str,
        lambda text: (optional and text == "") or (
            text.startswith(("http://", "https://")) and bool(urlsplit(text).hostname)),
    )


def digits(*, optional: bool = False) -> Converter:
    """A string of ASCII digits (e.g. a shortcode); the empty string too if `optional`."""
    return Converter(("empty or " if optional else "") + "a string of digits", str,
                     lambda text: (optional and text == "") or (text.isascii() and text.isdigit()))


def short_text(max_length: int) -> Converter:
    """A non-empty string of at most `max_length` characters."""
    return Converter(f"a non-empty string of at most {max_length} characters", str,
                     lambda text: bool(text.strip()) and len(text) <= max_length)


# --- the schema ----------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One configuration option: `[section] name`, its default, converter and help."""

    section: str
    name: str
    default: Any
    convert: Converter
    help: str
    secret: bool = False

    @property
    def env_var(self) -> str:
        return f"{ENV_PREFIX}{self.section.upper()}_{self.name.upper()}"

    @property
    def key(self) -> str:
        return f"[{self.section}] {self.name}"


SECTIONS: dict[str, str] = {
    "web": "HTTP server: captive portal, owner UI, M-Pesa callbacks, ops endpoints.",
    "database": "SQLite database.",
    "venue": "How the hotspot presents itself to customers.",
    "logging": "Logging.",
    "daraja": "Safaricom Daraja API (M-Pesa Express / STK push).",
    "settlement": "How pending payments are settled: STK status queries and expiry.",
    "radius": "RADIUS server the MikroTik hotspot authenticates against.",
    "router": "RouterOS API connection to the MikroTik router.",
    "simulators": 'Embedded simulators, started for any backend = "simulator".',
}

_DARAJA_CHOICES = enum("daraja", "simulator")

SCHEMA: tuple[Option, ...] = (
    Option("web", "host", "0.0.0.0", NON_EMPTY_STR,
           "Listen address for the portal, the owner UI and the M-Pesa callbacks."),
    Option("web", "port", 8080, PORT, "Listen port; 0 picks a free port."),
    Option("web", "public_url", "", url(optional=True),
           "Externally reachable https base URL that Daraja can POST callbacks to. Empty: "
           "callbacks are off and payments settle by STK Query only."),
    Option("web", "callback_token", "", STR,
           "Secret path segment of the callback URLs, so only Daraja knows where to POST. "
           "If empty, a random token is generated at every start.", secret=True),
    Option("database", "path", "/var/lib/hotspotd/hotspotd.sqlite3", NON_EMPTY_STR,
           "SQLite database file; its directory must be writable (WAL mode)."),
    Option("venue", "name", "WiFi Hotspot", NON_EMPTY_STR,
           "Venue name shown on the portal and in payment prompts."),
    Option("logging", "level", "info", enum("debug", "info", "warning", "error"),
           "Log level."),
    Option("daraja", "backend", "daraja", _DARAJA_CHOICES,
           '"daraja" talks to base_url; "simulator" starts the embedded Daraja simulator '
           "and points the client at it."),
    Option("daraja", "base_url", "https://sandbox.safaricom.co.ke", url(),
           "Daraja API base URL: the sandbox, or https://api.safaricom.co.ke in production."),
    Option("daraja", "consumer_key", "", STR,
           "Daraja app consumer key. Required when backend = \"daraja\".", secret=True),
    Option("daraja", "consumer_secret", "", STR,
           "Daraja app consumer secret. Required when backend = \"daraja\".", secret=True),
    Option("daraja", "shortcode", "174379", digits(),
           "Business shortcode (BusinessShortCode); 174379 is the sandbox paybill."),
    Option("daraja", "passkey", "", STR,
           "Lipa na M-Pesa Online passkey. Required when backend = \"daraja\".", secret=True),
    Option("daraja", "transaction_type", "paybill", enum("paybill", "till"),
           '"paybill" (CustomerPayBillOnline) or "till" (CustomerBuyGoodsOnline).'),
    Option("daraja", "till_number", "", digits(optional=True),
           'Till number used as PartyB for till payments; required when transaction_type '
           '= "till".'),
    Option("daraja", "account_reference", "WIFI", short_text(12),
           "AccountReference shown to the customer (at most 12 characters)."),
    Option("daraja", "timeout_seconds", 10.0, NON_NEGATIVE_FLOAT,
           "Timeout of each HTTP request to Daraja."),
    Option("settlement", "inline_query_delays", (2.0, 4.0), float_list(),
           "Seconds after the push at which the purchase request path queries the STK "
           "status, in the background. Empty: leave it all to the reconciler."),
    Option("settlement", "reconcile_interval_seconds", 5, POSITIVE_INT,
           "How often the reconciler looks for pending payments."),
    Option("settlement", "query_backoff_seconds", (3.0, 5.0, 10.0, 20.0, 30.0),
           float_list(non_empty=True),
           "Delays between successive STK queries of one payment; the last one repeats."),
    Option("settlement", "pending_expiry_seconds", 180, POSITIVE_INT,
           "A payment with no final answer after this long ends as expired."),
    Option("radius", "host", "0.0.0.0", NON_EMPTY_STR, "Listen address of the RADIUS server."),
    Option("radius", "auth_port", 1812, PORT, "Authentication port (UDP); 0 picks a free port."),
    Option("radius", "acct_port", 1813, PORT, "Accounting port (UDP); 0 picks a free port."),
    Option("radius", "secret", "", STR,
           "RADIUS shared secret, as set on the router (/radius secret=).", secret=True),
    Option("radius", "mac_password", "", STR,
           "Password the router sends for MAC logins; must match the router's hotspot "
           "profile (mac-auth-password).", secret=True),
    Option("radius", "clients", ("192.168.88.1",), STR_LIST,
           "Addresses of the routers allowed to send RADIUS requests."),
    Option("radius", "interim_interval_seconds", 120, POSITIVE_INT,
           "Acct-Interim-Interval sent to the router in Access-Accept."),
    Option("radius", "require_message_authenticator", False, BOOL,
           "Reject Access-Requests without a valid Message-Authenticator."),
    Option("router", "backend", "routeros", enum("routeros", "simulator"),
           '"routeros" talks to host:api_port; "simulator" starts the embedded RouterOS '
           "simulator and points the client at it."),
    Option("router", "host", "192.168.88.1", NON_EMPTY_STR, "Router address for the API."),
    Option("router", "api_port", 8728, PORT, "RouterOS API port (8729 for API over TLS)."),
    Option("router", "user", "hotspotd", NON_EMPTY_STR, "RouterOS API user."),
    Option("router", "password", "", STR,
           'RouterOS API password. Required when backend = "routeros".', secret=True),
    Option("router", "use_tls", False, BOOL, "Connect to the API over TLS (api-ssl)."),
    Option("router", "timeout_seconds", 5.0, NON_NEGATIVE_FLOAT,
           "Timeout of each RouterOS API call."),
    Option("simulators", "host", "127.0.0.1", NON_EMPTY_STR,
           "Where the embedded simulators listen."),
    Option("simulators", "daraja_port", 0, PORT,
           "Port of the Daraja simulator; 0 picks a free port."),
    Option("simulators", "router_api_port", 0, PORT,
           "Port of the RouterOS API simulator; 0 picks a free port."),
    Option("simulators", "approve_delay_seconds", 2.0, NON_NEGATIVE_FLOAT,
           "How long the sandbox test number 254708374149 takes to approve by itself."),
)

OPTIONS: dict[tuple[str, str], Option] = {(o.section, o.name): o for o in SCHEMA}


# --- the loaded configuration --------------------------------------------------------


SECTION_TYPES: dict[str, type] = {
    section: make_dataclass(
        f"{section.capitalize()}Section",
        [(o.name, Any, field(repr=not o.secret)) for o in SCHEMA if o.section == section],
        frozen=True,
    )
    for section in SECTIONS
}


@dataclass(frozen=True)
class Config:
    """The loaded configuration: `config.<section>.<name>`, frozen.

    Build it with `load_config()` or `Config.from_values()`. Each section is a frozen
    dataclass whose repr leaves secrets out; list options are tuples. `source` is the
    file that was read, if any.
    """

    sections: Mapping[str, Any]
    source: Path | None = None

    @classmethod
    def from_values(
        cls, values: Mapping[str, Mapping[str, Any]] | None = None, source: Path | None = None
    ) -> Config:
        """A Config from section -> name -> value; defaults fill the rest, all checked."""
        merged = _merge(_defaults(), values or {}, "Config")
        return cls(MappingProxyType({
            section: SECTION_TYPES[section](**options) for section, options in merged.items()
        }), source)

    def __getattr__(self, section: str) -> Any:
        if section.startswith("_") or section in ("sections", "source"):
            raise AttributeError(section)
        try:
            return self.sections[section]
        except KeyError:
            raise AttributeError(f"no config section [{section}]") from None

    def values(self) -> dict[str, dict[str, Any]]:
        """All values by section, secrets included."""
        return {name: asdict(section) for name, section in self.sections.items()}

    def masked(self) -> dict[str, dict[str, Any]]:
        """All values by section, every secret that is set replaced by "***" (for logs)."""
        return {
            section: {name: MASK if OPTIONS[section, name].secret and value else value
                      for name, value in options.items()}
            for section, options in self.values().items()
        }

    def replace(self, section: str, **values: Any) -> Config:
        """A new Config with the given options of `section` changed (and checked)."""
        changed = _merge(self.values(), {section: values}, "replace()")
        return Config.from_values(changed, self.source)


def _defaults() -> dict[str, dict[str, Any]]:
    values: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for option in SCHEMA:
        values[option.section][option.name] = option.default
    return values


def _merge(
    base: dict[str, dict[str, Any]], changes: Mapping[str, Mapping[str, Any]], origin: str
) -> dict[str, dict[str, Any]]:
    """`base` updated with `changes`, each value converted; None values are skipped."""
    for section, options in changes.items():
        for name, value in _section_items(origin, section, options):
            if value is not None:
                option = _lookup(origin, section, name)
                base[section][name] = _convert(option, value, origin)
    return base


# --- loading -------------------------------------------------------------------------


def load_config(
    path: Path | None,
    *,
    env: Mapping[str, str] = os.environ,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """Load the configuration: defaults < file `path` < `env` < `overrides`.

    `overrides` maps section to name to a TOML-typed value (None values are ignored, so a
    CLI can pass its unset flags). Raises ConfigError with a one-line message.
    """
    values = _defaults()
    if path is not None:
        _apply_file(values, path)
    _apply_env(values, env)
    _merge(values, overrides or {}, "overrides")
    return Config.from_values(values, path)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        message = " ".join(str(exc).split())
        raise ConfigError(f"{path}: invalid TOML: {message}") from None


def _apply_file(values: dict[str, dict[str, Any]], path: Path) -> None:
    data, origin, inline_secrets = _read_toml(path), str(path), []
    for section, table in data.items():
        for key, value in _section_items(origin, section, table):
            if key.endswith("_file") and (section, key[:-5]) in OPTIONS:
                option = OPTIONS[section, key[:-5]]
                if option.secret:
                    if option.name in table:
                        raise ConfigError(f"{origin}: {option.key}: set either {option.name} "
                                          f"or {key}, not both")
                    values[section][option.name] = _read_secret_file(
                        origin, option, value, path.parent)
                    continue
            option = _lookup(origin, section, key)
            values[section][key] = _convert(option, value, origin)
            if option.secret and value:
                inline_secrets.append(option.key)
    if inline_secrets and path.stat().st_mode & 0o077:
        logger.warning("%s holds secrets (%s) but is readable by group or others; "
                       "chmod 600 it or move them to *_file", origin, ", ".join(inline_secrets))


def _apply_env(values: dict[str, dict[str, Any]], env: Mapping[str, str]) -> None:
    known = set()
    for option in SCHEMA:
        name, file_name = option.env_var, option.env_var + "_FILE"
        known.update((name, file_name) if option.secret else (name,))
        origin = f"environment {name}"
        if name in env:
            if option.secret and file_name in env:
                raise ConfigError(f"{origin}: {option.key}: set either {name} or {file_name}, "
                                  "not both")
            values[option.section][option.name] = _convert(option, env[name], origin,
                                                           from_env=True)
        elif option.secret and file_name in env:
            values[option.section][option.name] = _read_secret_file(
                f"environment {file_name}", option, env[file_name], None)
    for name in env:
        section = name[len(ENV_PREFIX):].split("_", 1)[0].lower()
        if name.startswith(ENV_PREFIX) and section in SECTIONS and name not in known:
            raise ConfigError(f"environment {name}: unknown option in [{section}]")


def _section_items(origin: str, section: str, table: Any) -> Iterable[tuple[str, Any]]:
    if section not in SECTIONS:
        raise ConfigError(f"{origin}: [{section}]: unknown section"
                          f"{_suggest(section, SECTIONS)}; known: {', '.join(SECTIONS)}")
    if not isinstance(table, Mapping):
        raise ConfigError(f"{origin}: {section}: expected a [{section}] table, got "
                          f"{_REPR.repr(table)}")
    return list(table.items())


def _lookup(origin: str, section: str, name: str) -> Option:
    try:
        return OPTIONS[section, name]
    except KeyError:
        names = [o.name for o in SCHEMA if o.section == section]
        raise ConfigError(f"{origin}: [{section}] {name}: unknown key"
                          f"{_suggest(name, names)}") from None


def _suggest(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _convert(option: Option, value: Any, origin: str, *, from_env: bool = False) -> Any:
    converter = option.convert
    try:
        return converter.check(converter.parse_env(value) if from_env else value)
    except (ValueError, TypeError, KeyError):
        expected = (from_env and converter.env_expected) or converter.expected
        raise ConfigError(f"{origin}: {option.key}: expected {expected}, "
                          f"got {_show(option, value)}") from None


def _show(option: Option, value: Any) -> str:
    if option.secret:
        return f"a {type(value).__name__} (value hidden)"
    return _REPR.repr(value)


def _read_secret_file(origin: str, option: Option, file_value: Any,
                      base_dir: Path | None) -> str:
    where = f"{origin}: {option.key}_file"
    if not isinstance(file_value, str) or not file_value:
        raise ConfigError(f"{where}: expected a file path, got {_REPR.repr(file_value)}")
    path = Path(file_value).expanduser()
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    try:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(f"{where}: {path} is accessible by group or others "
                              f"(mode {mode:04o}); chmod 600 it")
        secret = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: {path} is not UTF-8 text") from None
    if not secret:
        raise ConfigError(f"{where}: {path} is empty")
    return secret


# --- production checks ---------------------------------------------------------------


def missing_required(
    config: Config, needed: Iterable[tuple[str, str]], reason: str = ""
) -> list[str]:
    """One problem ("[section] name is required<reason>") per needed option left empty."""
    return [f"[{section}] {name} is required{reason}" for section, name in needed
            if not getattr(getattr(config, section), name)]


def validate_required(
    config: Config, needed: Iterable[tuple[str, str]], reason: str = ""
) -> None:
    """Raise ConfigError naming every needed `(section, name)` of `config` left empty."""
    _raise_problems(config, missing_required(config, needed, reason))


def check_production(config: Config) -> None:
    """Raise ConfigError (one line, naming every missing key) if a real deployment would
    lack a secret it needs. Call it after generated values (the demo's) are filled in.
    """
    problems = []
    if config.daraja.backend == "daraja":
        problems += missing_required(
            config, [("daraja", "consumer_key"), ("daraja", "consumer_secret"),
                     ("daraja", "passkey")], ' when backend = "daraja"')
        if config.daraja.transaction_type == "till":
            problems += missing_required(config, [("daraja", "till_number")],
                                         ' when transaction_type = "till"')
        if config.web.public_url.startswith("http://"):
            problems.append('[web] public_url must be https:// when [daraja] backend = "daraja"')
    problems += missing_required(config, [("radius", "secret"), ("radius", "mac_password")])
    if config.router.backend == "routeros":
        problems += missing_required(config, [("router", "password")],
                                     ' when backend = "routeros"')
    _raise_problems(config, problems)


def _raise_problems(config: Config, problems: list[str]) -> None:
    if problems:
        where = str(config.source) if config.source else "configuration"
        raise ConfigError(f"{where}: " + "; ".join(problems))


# --- the example file ----------------------------------------------------------------


def render_example() -> str:
    """The example configuration: every option with its help and default, as TOML."""
    lines = _comment(
        "hotspotd configuration. Generated by `python -m hotspotd.config` from the schema "
        "in hotspotd/config.py; do not edit by hand. Every value shown is the default. Any "
        "option can also be set in the environment as HOTSPOTD_<SECTION>_<NAME> (e.g. "
        "HOTSPOTD_RADIUS_AUTH_PORT=1812; lists comma-separated), which wins over this file."
    )
    for section, about in SECTIONS.items():
        lines += ["", "", *_comment(about), f"[{section}]"]
        for option in (o for o in SCHEMA if o.section == section):
            lines += ["", *_comment(option.help)]
            literal = f"{option.name} = {_toml_literal(option.default)}"
            if option.secret:
                lines += _comment(f"Secret: better kept out of this file. Set ${option.env_var},"
                                  " or name a file only its owner can read (chmod 600):")
                lines += [f'# {option.name}_file = "/etc/hotspotd/{option.section}_{option.name}"',
                          f"# {literal}"]
            else:
                lines.append(literal)
    return "\n".join(lines) + "\n"


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, width=88, initial_indent="# ", subsequent_indent="# ",
                         break_on_hyphens=False)


def _toml_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_literal(element) for element in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


if __name__ == "__main__":
    sys.stdout.write(render_example())
