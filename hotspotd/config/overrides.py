"""The owner's overrides of the configuration file: which options the owner UI may edit
(`SETTINGS`), and the file's Config with the stored values applied.

The `settings` table itself is written by `hotspotd.admin.settings_store.SettingsStore`;
this module only reads rows it is given, so `hotspotd check` (ops) and the owner UI (admin)
see the same effective configuration without ops importing admin.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hotspotd.config import Config
from hotspotd.config.schema import OPTIONS, ConfigError
from hotspotd.secretbox import SecretBox

log = logging.getLogger(__name__)

REDACTED = "***"


@dataclass(frozen=True)
class Setting:
    """One editable setting: the config option `key` ("section.name") and how to edit it."""

    key: str
    label: str
    kind: str  # "text", "textarea", "int", "bool" or "secret"
    group: str  # "venue", "router" or "limits": one form each

    @property
    def option(self) -> Any:
        section, name = self.key.split(".", 1)
        return OPTIONS[section, name]

    @property
    def field(self) -> str:
        return self.key.replace(".", "__")


SETTINGS: tuple[Setting, ...] = (
    Setting("venue.name", "Venue name", "text", "venue"),
    Setting("venue.portal_text", "Portal text", "textarea", "venue"),
    Setting("router.host", "Router address", "text", "router"),
    Setting("router.api_port", "API port", "int", "router"),
    Setting("router.user", "API user", "text", "router"),
    Setting("router.password", "API password", "secret", "router"),
    Setting("router.use_tls", "API over TLS (api-ssl)", "bool", "router"),
    Setting("router.coa_port", "CoA port", "int", "router"),
    Setting("limits.push_per_device", "Pushes per device per window", "int", "limits"),
    Setting("limits.push_per_phone", "Pushes per phone per window", "int", "limits"),
    Setting("limits.push_window_seconds", "Window (seconds)", "int", "limits"),
    Setting("limits.cancel_limit", "Cancelled prompts before cooldown", "int", "limits"),
    Setting("limits.cancel_cooldown_seconds", "Cancellation cooldown (seconds)", "int",
            "limits"),
    Setting("daraja.requests_per_minute", "Daraja requests per minute (your app's limit)",
            "int", "limits"),
)
BY_KEY = {setting.key: setting for setting in SETTINGS}
GROUPS = ("venue", "router", "limits")


def stored_overrides(rows: Iterable[Sequence[Any]], box: Callable[[], SecretBox]
                     ) -> dict[str, Any]:
    """key -> value of `settings` rows (key, value, secret); secrets decrypted with `box()`,
    asked for only when a secret is stored. Keys no longer editable are left out."""
    found: dict[str, Any] = {}
    for key, value, secret in rows:
        if key not in BY_KEY:
            continue
        found[key] = box().decrypt(value, purpose=f"setting/{key}") if secret else \
            json.loads(value)
    return found


def apply_overrides(base: Config, overrides: Mapping[str, Any], *,
                    strict: bool = False) -> Config:
    """`base` with the stored settings applied. A stored value the schema no longer accepts
    is skipped with a warning (unless `strict`): the file's value stays in force."""
    config = base
    for key, value in overrides.items():
        section, name = key.split(".", 1)
        try:
            config = config.replace(section, **{name: value})
        except ConfigError:
            if strict:
                raise
            log.warning("stored setting %s is no longer valid; using the file's value", key)
    return config
