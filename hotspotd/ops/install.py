"""What `hotspotd init` writes: the configuration, secret files, data directory, key file,
the database and the owner account.

Layout (defaults; every path can be changed):

    /etc/hotspotd/hotspotd.toml        0640  the configuration, no secret in it
    /etc/hotspotd/secrets/<name>       0600  one secret per file, named by `<name>_file`
    /etc/hotspotd/secret.key           0600  encryption key of the secrets in the database
    /var/lib/hotspotd/                 0750  data directory: database, backups

Files the daemon must read are given to the service user (`--user`) when run as root.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotspotd.config import OPTIONS, load_config
from hotspotd.secretbox import create_key_file
from hotspotd.store.db import Database


class InitError(Exception):
    """`hotspotd init` cannot go on; the message says why and what to do."""


@dataclass
class InitPlan:
    config_path: Path
    data_dir: Path
    key_file: Path
    values: dict[str, dict[str, Any]]  # plain options, section -> name -> value
    secrets: dict[tuple[str, str], str] = field(default_factory=dict)
    user: str | None = None
    force: bool = False

    @property
    def secrets_dir(self) -> Path:
        return self.config_path.parent / "secrets"


def generated_secrets() -> dict[tuple[str, str], str]:
    """Secrets nobody has to type: the router gets them from the generated script."""
    return {("radius", "secret"): secrets.token_urlsafe(18),
            ("radius", "mac_password"): secrets.token_urlsafe(18),
            ("web", "callback_token"): secrets.token_urlsafe(24)}


def write_installation(plan: InitPlan) -> list[Path]:
    """Write everything; refuse to replace an existing config or key without `force`."""
    for existing in (plan.config_path, plan.key_file):
        if existing.exists() and not plan.force:
            raise InitError(f"{existing} exists; refusing to overwrite it (use --force to"
                            " replace it; a new key makes stored secrets unreadable)")
    owner = _user_ids(plan.user)
    written = [*_write_secrets(plan, owner), _write_config(plan)]
    _make_dir(plan.data_dir, 0o750, owner)
    plan.key_file.parent.mkdir(parents=True, exist_ok=True)
    create_key_file(plan.key_file, overwrite=plan.force)
    _give(plan.key_file, owner)
    written.append(plan.key_file)
    config = load_config(plan.config_path, env={})  # proves the file loads, secrets too
    db = Database(config.database.path).open()
    db.close()
    give_database(Path(config.database.path), plan.user)
    written.append(Path(config.database.path))
    return written


def give_database(path: Path, user: str | None) -> None:
    """Mode 0600 and the service user, for the database file and its WAL companions."""
    owner = _user_ids(user)
    for suffix in ("", "-wal", "-shm"):
        companion = Path(str(path) + suffix)
        if companion.exists():
            os.chmod(companion, 0o600)
            _give(companion, owner)


def _write_secrets(plan: InitPlan, owner: tuple[int, int] | None) -> list[Path]:
    if not plan.secrets:
        return []
    _make_dir(plan.secrets_dir, 0o700, owner)
    paths = []
    for (section, name), value in sorted(plan.secrets.items()):
        if not OPTIONS[section, name].secret:
            raise InitError(f"[{section}] {name} is not a secret option")
        path = plan.secrets_dir / f"{section}_{name}"
        _write_file(path, value + "\n", 0o600, owner)
        plan.values.setdefault(section, {})[f"{name}_file"] = str(path)
        paths.append(path)
    return paths


def _write_config(plan: InitPlan) -> Path:
    plan.values.setdefault("database", {})["path"] = str(plan.data_dir / "hotspotd.sqlite3")
    plan.values.setdefault("security", {})["key_file"] = str(plan.key_file)
    header = ("# hotspotd configuration, written by `hotspotd init`. Every option and its\n"
              "# default: hotspotd.example.toml (python -m hotspotd.config). Secrets are in\n"
              f"# {plan.secrets_dir}, one per file (mode 0600).\n")
    plan.config_path.parent.mkdir(parents=True, exist_ok=True)
    _write_file(plan.config_path, header + to_toml(plan.values), 0o640, None, group_of=plan)
    return plan.config_path


def to_toml(values: Mapping[str, Mapping[str, Any]]) -> str:
    lines: list[str] = []
    for section, options in values.items():
        if options:
            lines += ["", f"[{section}]"]
            lines += [f"{name} = {_literal(value)}" for name, value in options.items()]
    return "\n".join(lines) + "\n"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _user_ids(user: str | None) -> tuple[int, int] | None:
    if not user:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise InitError(f"no user {user!r}: create it first (useradd --system"
                        f" --home-dir /var/lib/hotspotd --shell /usr/sbin/nologin {user})"
                        ) from None
    if os.geteuid() != 0 and entry.pw_uid != os.geteuid():
        raise InitError(f"giving files to {user!r} needs root: run it with sudo")
    return entry.pw_uid, entry.pw_gid


def _make_dir(path: Path, mode: int, owner: tuple[int, int] | None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    _give(path, owner)


def _write_file(path: Path, text: str, mode: int, owner: tuple[int, int] | None,
                group_of: InitPlan | None = None) -> None:
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temporary, mode)
    if group_of is not None and group_of.user:
        ids = _user_ids(group_of.user)
        if ids is not None and os.geteuid() == 0:
            os.chown(temporary, 0, ids[1])  # root:hotspotd 0640, readable by the service
    _give(temporary, owner)
    os.replace(temporary, path)


def _give(path: Path, owner: tuple[int, int] | None) -> None:
    if owner is not None and (os.geteuid() == 0 or owner[0] == os.geteuid()):
        os.chown(path, *owner)
