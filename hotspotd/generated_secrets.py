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
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(stored, handle, indent=2, sort_keys=True)
        os.replace(temporary, path)
    return stored
