"""`hotspotd init`: write the configuration, data directory, key file and owner account.

Answers come from flags; secrets from the environment (`HOTSPOTD_<SECTION>_<NAME>`, e.g.
HOTSPOTD_DARAJA_PASSKEY, HOTSPOTD_ROUTER_PASSWORD, HOTSPOTD_OWNER_PASSWORD) or, on a
terminal, from prompts that do not echo. The RADIUS secret, the MAC-login password and the
callback token are generated. Refuses to overwrite an existing configuration without --force.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from pathlib import Path

from hotspotd.admin.accounts import AdminError, create_account, owner_exists
from hotspotd.admin.setup_codes import issue_setup_code
from hotspotd.commands.common import fail
from hotspotd.config import Config, ConfigError, load_config
from hotspotd.ops.install import (
    InitError,
    InitPlan,
    generated_secrets,
    give_database,
    write_installation,
)
from hotspotd.store.db import Database

NAME = "init"
HELP = "write the configuration, data directory, encryption key and owner account"
ASKED_SECRETS = (("daraja", "consumer_key"), ("daraja", "consumer_secret"),
                 ("daraja", "passkey"), ("router", "password"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--config", "-c", type=Path, default=Path("/etc/hotspotd/hotspotd.toml"),
        help="configuration file to write (default: %(default)s)")
    add("--data-dir", type=Path, default=Path("/var/lib/hotspotd"),
        help="data directory: database and backups (default: %(default)s)")
    add("--key-file", type=Path, default=None,
        help="encryption key file (default: secret.key beside the configuration)")
    add("--user", default=None, help="service user that gets the data and secret files")
    add("--venue", default="WiFi Hotspot", help="venue name shown on the portal")
    add("--web-port", type=int, default=8080, help="portal port (default: %(default)s)")
    add("--daraja", choices=("daraja", "simulator"), default="daraja",
        help="Daraja backend (default: %(default)s)")
    add("--daraja-url", default="https://api.safaricom.co.ke",
        help="Daraja base URL (default: production, %(default)s)")
    add("--shortcode", default="174379", help="paybill or till shortcode")
    add("--till-number", default="", help="till number (makes payments BuyGoods)")
    add("--public-url", default="", help="public https URL for M-Pesa callbacks, if any")
    add("--router", choices=("routeros", "simulator"), default="routeros",
        help="router backend (default: %(default)s)")
    add("--router-host", default="192.168.88.1", help="router address (default: %(default)s)")
    add("--router-user", default="hotspotd", help="RouterOS API user (default: %(default)s)")
    add("--radius-client", action="append", default=None,
        help="address the router sends RADIUS from (repeatable; default: the router host)")
    add("--owner", default="owner", help="owner account username (default: %(default)s)")
    add("--no-owner", action="store_true", help="do not create the owner account now")
    add("--force", action="store_true", help="overwrite an existing configuration and key")


def run(args: argparse.Namespace) -> int:
    try:
        plan = build_plan(args, os.environ)
        written = write_installation(plan)
        owner_message = create_owner(args, plan, os.environ)
        give_database(plan.data_dir / "hotspotd.sqlite3", plan.user)
    except (InitError, ConfigError, AdminError, OSError) as exc:
        return fail(exc)
    for path in written:
        print(f"wrote {path}")
    print(owner_message)
    print(f"next: hotspotd check --config {plan.config_path}")
    return 0


def build_plan(args: argparse.Namespace, env: dict[str, str] | os._Environ[str]) -> InitPlan:
    till = bool(args.till_number)
    values = {
        "web": {"host": "0.0.0.0", "port": args.web_port, "public_url": args.public_url},
        "venue": {"name": args.venue},
        "daraja": {"backend": args.daraja, "base_url": args.daraja_url,
                   "shortcode": args.shortcode, "transaction_type": "till" if till else
                   "paybill", "till_number": args.till_number},
        "radius": {"clients": args.radius_client or [args.router_host]},
        "router": {"backend": args.router, "host": args.router_host, "user": args.router_user},
        "backup": {"directory": ""},
    }
    found = generated_secrets()
    for section, name in ASKED_SECRETS:
        value = ask_secret(env, section, name)
        if value:
            found[section, name] = value
    config_path, data_dir = args.config.resolve(), args.data_dir.resolve()
    values["backup"]["directory"] = str(data_dir / "backups")
    key_file = (args.key_file or config_path.parent / "secret.key").resolve()
    return InitPlan(config_path=config_path, data_dir=data_dir, key_file=key_file,
                    values=values, secrets=found, user=args.user, force=args.force)


def ask_secret(env: dict[str, str] | os._Environ[str], section: str, name: str) -> str:
    """From HOTSPOTD_<SECTION>_<NAME>, else a prompt on a terminal, else empty."""
    value = env.get(f"HOTSPOTD_{section.upper()}_{name.upper()}", "")
    if value or not sys.stdin.isatty():
        return value
    return getpass.getpass(f"[{section}] {name} (empty: set it later): ")


def create_owner(args: argparse.Namespace, plan: InitPlan,
                 env: dict[str, str] | os._Environ[str]) -> str:
    config = load_config(plan.config_path, env={})
    db = Database(config.database.path).open()
    try:
        if owner_exists(db):
            return "owner account: one exists already, left as it is"
        if args.no_owner:
            return setup_code_message(db, config, "--no-owner")
        password = env.get("HOTSPOTD_OWNER_PASSWORD", "")
        if not password and sys.stdin.isatty():
            password = getpass.getpass(f"password for the owner account {args.owner!r}: ")
            if getpass.getpass("again: ") != password:
                raise InitError("the two passwords differ; run hotspotd init --force again")
        if not password:
            return setup_code_message(db, config, "no HOTSPOTD_OWNER_PASSWORD and no terminal")
        create_account(db, username=args.owner, password=password, role="owner",
                       now=time.time())
    finally:
        db.close()
    return f"owner account: {args.owner!r} created"


def setup_code_message(db: Database, config: Config, why: str) -> str:
    """No owner yet: a one-time code for the owner UI's set-up page (printed, not kept)."""
    hours = config.admin.setup_code_hours
    code = issue_setup_code(db, now=time.time(), hours=hours, issued_by="init")
    print(f"hotspotd: owner set-up code {code}", file=sys.stderr, flush=True)
    return (f"owner account: not created ({why}). The owner UI's set-up page (/admin/setup)"
            f" asks for the one-time code {code}: it works once, within {hours} h;"
            " `hotspotd run` prints a new one at each start while no owner exists.")
