"""Secrets the appliance makes for itself, kept in the data directory (mode 0600).

There are no default passwords: a secret the configuration leaves empty (the callback path
token; in the demo also the RADIUS secret, the MAC-login password and the simulators'
credentials) is generated once with `secrets.token_urlsafe` and reused on later starts, so
URLs registered with Daraja and secrets pasted into the router stay valid across restarts.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FILE_NAME = "generated-secrets.json"


def load_or_create(data_dir: Path, names: Iterable[str]) -> dict[str, str]:
    """Return a value for every name, creating and persisting the missing ones."""
    path = data_dir / FILE_NAME
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    missing = [name for name in names if not stored.get(name)]
    if missing:
        for name in missing:
            stored[name] = secrets.token_urlsafe(18)
        data_dir.mkdir(parents=True, exist_ok=True)
        write_private_json(path, stored)
    return stored


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically with mode 0600 (it can hold secrets)."""
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
    os.replace(temporary, path)


def fill_config(config: Any) -> Any:
    """`config` (a hotspotd.config.Config) with every secret it leaves empty and may
    generate filled in: generated once, persisted beside the database, reused."""
    data_dir = Path(config.database.path).parent
    wanted = {("web", "callback_token")}
    if config.daraja.backend == "simulator":
        wanted |= {("daraja", "consumer_key"), ("daraja", "consumer_secret"),
                   ("daraja", "passkey")}
    if config.router.backend == "simulator":
        wanted |= {("router", "password"), ("radius", "secret"), ("radius", "mac_password")}
    empty = sorted((section, name) for section, name in wanted
                   if not getattr(getattr(config, section), name))
    if not empty:
        return config
    values = load_or_create(data_dir, [f"{s}.{n}" for s, n in empty])
    for section, name in empty:
        config = config.replace(section, **{name: values[f"{section}.{name}"]})
    return config
