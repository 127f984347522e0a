"""Load the configuration: defaults < TOML file < environment < overrides; production checks."""

from __future__ import annotations

import difflib
import logging
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, make_dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hotspotd.config.schema import (
    ENV_PREFIX,
    MASK,
    OPTIONS,
    SCHEMA,
    SECTIONS,
    SHORT_REPR,
    ConfigError,
    Option,
)

logger = logging.getLogger("hotspotd.config")

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
    # More routers of this appliance ([routers.<name>] tables): name -> a [router] section.
    extra_routers: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_values(
        cls, values: Mapping[str, Mapping[str, Any]] | None = None, source: Path | None = None,
        routers: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Config:
        """A Config from section -> name -> value; defaults fill the rest, all checked.
        `routers`: name -> options of each router besides [router]."""
        merged = _merge(_defaults(), values or {}, "Config")
        extra = {name: _router_section(name, options, str(source or "Config"))
                 for name, options in (routers or {}).items()}
        first = merged["router"]["name"]
        if first in extra:
            raise ConfigError(f"{source or 'Config'}: [routers.{first}]: the first router"
                              f" ([router]) is named {first!r} already")
        return cls(MappingProxyType({
            section: SECTION_TYPES[section](**options) for section, options in merged.items()
        }), source, MappingProxyType(extra))

    def routers(self) -> tuple[Any, ...]:
        """Every router of this appliance: [router] first, then [routers.<name>] by name."""
        return (self.router, *(self.extra_routers[name] for name in sorted(self.extra_routers)))

    def __getattr__(self, section: str) -> Any:
        if section.startswith("_") or section in ("sections", "source", "extra_routers"):
            raise AttributeError(section)
        try:
            return self.sections[section]
        except KeyError:
            raise AttributeError(f"no config section [{section}]") from None

    def values(self) -> dict[str, dict[str, Any]]:
        """All values by section, secrets included."""
        return {name: asdict(section) for name, section in self.sections.items()}

    def with_router(self, name: str, **options: Any) -> Config:
        """A new Config with one more router, [routers.<name>], its options checked."""
        return Config.from_values(self.values(), self.source,
                                  {**self.router_values(), name: options})

    def for_router(self, router: Any) -> Config:
        """This configuration as if `router` (one of `routers()`) were its only router: what
        the checks of one router read."""
        return Config.from_values({**self.values(), "router": asdict(router)}, self.source)

    def router_values(self) -> dict[str, dict[str, Any]]:
        """The extra routers' options by name, secrets included."""
        return {name: asdict(section) for name, section in self.extra_routers.items()}

    def masked(self) -> dict[str, dict[str, Any]]:
        """All values by section, every secret that is set replaced by "***" (for logs)."""
        sections = {**self.values(), **{f"routers.{name}": options for name, options
                                        in self.router_values().items()}}
        return {
            section: {name: MASK if OPTIONS["router" if "." in section else section, name]
                      .secret and value else value for name, value in options.items()}
            for section, options in sections.items()
        }

    def replace(self, section: str, **values: Any) -> Config:
        """A new Config with the given options of `section` changed (and checked)."""
        changed = _merge(self.values(), {section: values}, "replace()")
        return Config.from_values(changed, self.source, self.router_values())


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
    values, routers = _defaults(), {}
    if path is not None:
        routers = _apply_file(values, path)
    _apply_env(values, env)
    _merge(values, overrides or {}, "overrides")
    return Config.from_values(values, path, routers)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        message = " ".join(str(exc).split())
        raise ConfigError(f"{path}: invalid TOML: {message}") from None


def _apply_file(values: dict[str, dict[str, Any]], path: Path) -> dict[str, dict[str, Any]]:
    """Apply the file's sections to `values`; return its [routers.<name>] tables, each read
    as a [router] section (name -> options)."""
    data, origin, inline_secrets = _read_toml(path), str(path), []
    routers = _router_tables(origin, data.pop("routers", {}), path.parent, inline_secrets)
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
    return routers


def _router_tables(origin: str, tables: Any, base_dir: Path,
                   inline_secrets: list[str]) -> dict[str, dict[str, Any]]:
    """[routers.<name>] tables: each key checked as the [router] option of that name."""
    if not isinstance(tables, Mapping):
        raise ConfigError(f"{origin}: routers: expected [routers.<name>] tables, got "
                          f"{SHORT_REPR.repr(tables)}")
    routers: dict[str, dict[str, Any]] = {}
    for name, table in tables.items():
        where = f"{origin}: [routers.{name}]"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: expected a table, got {SHORT_REPR.repr(table)}")
        options: dict[str, Any] = {}
        for key, value in table.items():
            secret = OPTIONS.get(("router", key[:-5])) if key.endswith("_file") else None
            if secret is not None and secret.secret:
                options[secret.name] = _read_secret_file(where, secret, value, base_dir)
                continue
            options[key] = value
            if key in ("password", "radius_secret") and value:
                inline_secrets.append(f"[routers.{name}] {key}")
        routers[name] = options
    return routers


def _router_section(name: str, options: Mapping[str, Any], origin: str) -> Any:
    """One extra router: the [router] defaults, its options over them, all checked."""
    where = f"{origin}: [routers.{name}]"
    if not OPTIONS["router", "name"].convert.accept(name):
        raise ConfigError(f"{where}: a router name is 1-32 lower-case letters, digits, - or _")
    values = {o.name: o.default for o in SCHEMA if o.section == "router"}
    for key, value in options.items():
        if key == "name":
            continue
        try:
            option = OPTIONS["router", key]
        except KeyError:
            names = [o.name for o in SCHEMA if o.section == "router"]
            raise ConfigError(f"{where} {key}: unknown key{_suggest(key, names)}") from None
        values[key] = _convert(option, value, where)
    values["name"] = name
    return SECTION_TYPES["router"](**values)


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
                          f"{SHORT_REPR.repr(table)}")
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
    return SHORT_REPR.repr(value)


def _read_secret_file(origin: str, option: Option, file_value: Any,
                      base_dir: Path | None) -> str:
    where = f"{origin}: {option.key}_file"
    if not isinstance(file_value, str) or not file_value:
        raise ConfigError(f"{where}: expected a file path, got {SHORT_REPR.repr(file_value)}")
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
    for router in config.extra_routers.values():
        if router.backend == "routeros" and not router.password:
            problems.append(f'[routers.{router.name}] password is required when backend ='
                            ' "routeros"')
    _raise_problems(config, problems)


def _raise_problems(config: Config, problems: list[str]) -> None:
    if problems:
        where = str(config.source) if config.source else "configuration"
        raise ConfigError(f"{where}: " + "; ".join(problems))
