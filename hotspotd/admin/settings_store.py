"""Settings the owner edits in the web UI, kept in SQLite (table `settings`, migration 0010),
overriding the configuration file.

Each editable setting is a config option (`section.name`), checked with the schema's own
converter, so the UI accepts exactly what the file accepts. Secrets (the router password)
are stored encrypted with `SecretBox` (purpose `setting/<key>`), never shown, never logged,
and an empty secret field keeps the stored value. Every save is one transaction with its
audit row (before/after, secrets redacted). Readers get the effective configuration from
`SettingsStore.config()` (cached, rebuilt after each save); listeners hear which keys
changed (the wiring code reconnects the router gateway).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hotspotd.admin.accounts import AdminError
from hotspotd.admin.audit import record_audit
from hotspotd.config import Config, ConfigError
from hotspotd.config.overrides import (
    BY_KEY,
    GROUPS,
    REDACTED,
    SETTINGS,
    Setting,
    apply_overrides,
    stored_overrides,
)
from hotspotd.secretbox import SecretBox, SecretBoxError
from hotspotd.store.db import Database

log = logging.getLogger(__name__)


class SettingsRefused(AdminError):
    """One or more submitted values are invalid; nothing was changed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = problems


Listener = Callable[[set[str]], None]


class SettingsStore:
    """The `settings` table over a base Config (the file's values)."""

    def __init__(self, db: Database, base: Config, *, key_file: Path | None = None) -> None:
        self.db = db
        self.base = base
        self._key_file = key_file
        self._lock = threading.Lock()
        self._effective: Config | None = None
        self._listeners: list[Listener] = []
        self.restart_needed: set[str] = set()  # saved, but in force only after a restart

    # -- reading ---------------------------------------------------------------------------
    def config(self) -> Config:
        """The effective configuration: the file's, with the stored settings applied."""
        effective = self._effective
        if effective is None:
            with self._lock:
                effective = self._effective = apply_overrides(self.base, self.overrides())
        return effective

    def overrides(self) -> dict[str, Any]:
        """key -> stored value (secrets decrypted) for every stored setting still editable."""
        return stored_overrides(self.db.query("SELECT key, value, secret FROM settings"),
                                self.box)

    def stored_keys(self) -> set[str]:
        return {row[0] for row in self.db.query("SELECT key FROM settings")}

    def value(self, key: str) -> Any:
        section, name = key.split(".", 1)
        return getattr(getattr(self.config(), section), name)

    def form_values(self) -> dict[str, Any]:
        """What the form shows: every setting's current value, secrets only as set/unset."""
        return {s.key: (bool(self.value(s.key)) if s.kind == "secret" else self.value(s.key))
                for s in SETTINGS}

    def box(self) -> SecretBox:
        if self._key_file is None:
            raise AdminError("No [security] key_file is configured: secrets cannot be stored.")
        try:
            return SecretBox.from_key_file(self._key_file)
        except SecretBoxError as exc:  # missing or unsafe key file: say so, on the page too
            raise AdminError(str(exc)) from None

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(changed_keys)` after every save that changed something."""
        self._listeners.append(listener)

    # -- changing --------------------------------------------------------------------------
    def save(self, group: str, form: Mapping[str, str], *, username: str, now: float,
             source_ip: str | None = None) -> set[str]:
        """Check every field of `group` from `form`; store the changed ones with one audit
        row. Raises SettingsRefused (nothing stored) when any value is invalid."""
        if group not in GROUPS:
            raise AdminError(f"Unknown settings group {group!r}.")
        wanted = parse_group(group, form)
        changed = {key: value for key, value in wanted.items() if value != self.value(key)}
        if not changed:
            return set()
        try:  # the whole configuration must still hold together (e.g. cross-checks)
            apply_overrides(self.config(), changed, strict=True)
        except ConfigError as exc:
            raise SettingsRefused([str(exc)]) from None
        before = {key: _shown(key, self.value(key)) for key in changed}
        after = {key: _shown(key, value, changed=True) for key, value in changed.items()}
        rows = [self._row(key, value) for key, value in changed.items()]
        with self.db.write() as conn:
            for key, stored, secret in rows:
                conn.execute(
                    "INSERT INTO settings (key, value, secret, updated_at, updated_by)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET value ="
                    " excluded.value, secret = excluded.secret, updated_at ="
                    " excluded.updated_at, updated_by = excluded.updated_by",
                    (key, stored, int(secret), now, username))
            record_audit(conn, at=now, username=username, action=f"settings.{group}",
                         target=group, before=before, after=after, source_ip=source_ip)
        with self._lock:
            self._effective = None
        log.info("settings changed by %s: %s", username, ", ".join(sorted(changed)))
        self.announce(set(changed))
        return set(changed)

    def announce(self, keys: set[str]) -> None:
        """Tell the listeners what changed: settings keys, or "plans" after a plan edit."""
        for listener in self._listeners:
            try:
                listener(keys)
            except Exception:  # the change is stored; applying it live is best effort
                log.exception("applying changed settings %s failed", sorted(keys))

    def _row(self, key: str, value: Any) -> tuple[str, str, bool]:
        if BY_KEY[key].kind == "secret":
            return key, self.box().encrypt(value, purpose=f"setting/{key}"), True
        return key, json.dumps(value), False


def parse_group(group: str, form: Mapping[str, str]) -> dict[str, Any]:
    """The group's values from a submitted form, each checked by the config schema. An
    empty secret field is left out (it keeps the stored secret)."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for setting in (s for s in SETTINGS if s.group == group):
        raw = form.get(setting.field, "")
        if setting.kind == "secret" and raw == "":
            continue
        try:
            values[setting.key] = _convert(setting, raw)
        except ValueError as exc:
            problems.append(f"{setting.label}: {exc}")
    if problems:
        raise SettingsRefused(problems)
    return values


def _convert(setting: Setting, raw: str) -> Any:
    if setting.kind == "bool":
        value: Any = raw in ("1", "on", "true", "yes")
    elif setting.kind == "int":
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw.strip()[:20]!r}.") from None
    else:
        value = raw.replace("\r\n", "\n")
        if setting.kind == "text":
            value = value.strip()
    convert = setting.option.convert
    try:
        return convert.check(value)
    except (ValueError, TypeError, KeyError):
        shown = "the value given" if setting.kind == "secret" else repr(value)[:40]
        raise ValueError(f"expected {convert.expected}, got {shown}.") from None


def _shown(key: str, value: Any, *, changed: bool = False) -> Any:
    """A value as the audit log may keep it: secrets never."""
    if BY_KEY[key].kind != "secret":
        return value
    if changed:
        return REDACTED + " (changed)"
    return REDACTED if value else "(empty)"
