"""`hotspotd mpesa register-c2b | add-channel | list-channels | use-channel`.

- `register-c2b [--name N]`: register the C2B confirmation/validation URLs of the
  configured Daraja channel (or of the stored channel N) and print Daraja's answer.
- `add-channel --name N --kind paybill|till --shortcode S [--till-number T]
  [--environment sandbox|production]`: store a Daraja credential set, its secrets read
  from the environment (HOTSPOTD_CHANNEL_CONSUMER_KEY, HOTSPOTD_CHANNEL_CONSUMER_SECRET,
  HOTSPOTD_CHANNEL_PASSKEY; the callback path token is generated) and encrypted with the
  `[security] key_file`. Prints the channel's callback URLs once.
- `list-channels`: names, kinds and shortcodes, and which one is active; never a secret.
- `use-channel --name N`: new STK pushes go out on channel N ("default": the `[daraja]`
  section). Payments already made keep their own channel. A running daemon follows at once.

The URLs are `[web] public_url` + `/callbacks/<callback_token>/c2b/confirmation` and
`.../c2b/validation` (the secret path token keeps strangers out). Production URLs must be
https and must not contain "mpesa", "safaricom", "sql", "query", "exe" or "cmd".
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hotspotd.commands.common import fail
from hotspotd.config import Config, ConfigError, load_config
from hotspotd.daraja.budget import RequestBudget
from hotspotd.daraja.client import DarajaClient
from hotspotd.daraja.errors import DarajaError
from hotspotd.mpesa.channel_clients import callback_urls
from hotspotd.mpesa.channels import (
    DEFAULT_CHANNEL,
    Channel,
    active_channel,
    load_channel,
    load_channels,
    save_channel,
    set_active_channel,
)
from hotspotd.secretbox import SecretBox, SecretBoxError
from hotspotd.store.db import Database

NAME = "mpesa"
HELP = "M-Pesa (Daraja) tasks: register-c2b registers the C2B URLs and prints the answer"
FORBIDDEN_WORDS = ("mpesa", "safaricom", "sql", "query", "exe", "cmd")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("register-c2b", "add-channel", "list-channels",
                                           "use-channel"), help="what to do")
    parser.add_argument("--name", help="channel name (add-channel, use-channel; register-c2b"
                                       " of a stored channel)")
    parser.add_argument("--kind", choices=("paybill", "till"), default="paybill")
    parser.add_argument("--environment", choices=("sandbox", "production"), default="sandbox")
    parser.add_argument("--shortcode", help="BusinessShortCode (add-channel)")
    parser.add_argument("--till-number", default="", help="PartyB of a till (add-channel)")
    parser.add_argument("--config", required=True, help="the hotspotd.toml to use")
    parser.add_argument("--response-type", choices=("Completed", "Cancelled"), default=None,
                        help="what M-Pesa does if validation is unreachable"
                             " (default: [c2b] response_type)")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(Path(args.config))
    except ConfigError as exc:
        return fail(exc)
    try:
        if args.action != "register-c2b":
            return channel_command(args, config)
        if args.name and args.name != DEFAULT_CHANNEL:
            return register_stored_channel(args, config)
    except SecretBoxError as exc:  # no key file, or an unsafe one: stored channels unreadable
        return fail(exc)
    base, token = config.web.public_url, config.web.callback_token
    if not base or not token:
        print("hotspotd: [web] public_url and [web] callback_token must be set to register"
              " C2B URLs", file=sys.stderr)
        return 1
    urls = callback_urls(base, token)
    bad = [word for word in FORBIDDEN_WORDS if word in base.lower()]
    if bad:
        print(f"hotspotd: warning: Daraja refuses URLs containing {', '.join(bad)}",
              file=sys.stderr)
    cfg = config.daraja
    client = DarajaClient(base_url=cfg.base_url, consumer_key=cfg.consumer_key,
                          consumer_secret=cfg.consumer_secret, shortcode=cfg.shortcode,
                          passkey=cfg.passkey, transaction_type=cfg.transaction_type,
                          till_number=cfg.till_number, timeout=cfg.timeout_seconds,
                          budget=RequestBudget(per_minute=float(config.daraja.requests_per_minute)))
    return register(client, urls, args.response_type or config.c2b.response_type)


def register_stored_channel(args: argparse.Namespace, config: Config) -> int:
    """register-c2b for a stored channel: its own credentials and callback path."""
    if not config.web.public_url:
        print("hotspotd: [web] public_url must be set to register C2B URLs", file=sys.stderr)
        return 1
    with channel_store(config) as (db, box):
        channel = load_channel(db, box, args.name)
    if channel is None:
        return fail(f"no stored Daraja channel named {args.name!r}")
    client = DarajaClient(base_url=channel.base_url, consumer_key=channel.consumer_key,
                          consumer_secret=channel.consumer_secret, shortcode=channel.shortcode,
                          passkey=channel.passkey, transaction_type=channel.kind,
                          till_number=channel.till_number, timeout=config.daraja.timeout_seconds,
                          budget=RequestBudget(per_minute=float(config.daraja.requests_per_minute)))
    urls = callback_urls(config.web.public_url, channel.callback_token)
    return register(client, urls, args.response_type or config.c2b.response_type)


def register(client: DarajaClient, urls: dict[str, str], response_type: str) -> int:
    try:
        answer = client.register_c2b_urls(
            confirmation_url=urls["confirmation"], validation_url=urls["validation"],
            response_type=response_type)
    except DarajaError as exc:
        print(f"hotspotd: Daraja refused the registration: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2))
    return 0 if str(answer.get("ResponseCode", "")) == "0" else 1


HOSTS = {"sandbox": "https://sandbox.safaricom.co.ke", "production": "https://api.safaricom.co.ke"}
SECRET_ENV = {"consumer_key": "HOTSPOTD_CHANNEL_CONSUMER_KEY",
              "consumer_secret": "HOTSPOTD_CHANNEL_CONSUMER_SECRET",
              "passkey": "HOTSPOTD_CHANNEL_PASSKEY"}


@contextmanager
def channel_store(config: Config) -> Iterator[tuple[Database, SecretBox]]:
    """The database and the key that decrypts stored channels; SecretBoxError if the key
    file is missing or unsafe (the callers' `run` reports it)."""
    box = SecretBox.from_key_file(Path(config.security.key_file))
    db = Database(config.database.path).open()
    try:
        yield db, box
    finally:
        db.close()


def channel_command(args: argparse.Namespace, config: Config) -> int:
    with channel_store(config) as (db, box):
        return _channel_action(args, config, db, box)


def _channel_action(args: argparse.Namespace, config: Config, db: Database,
                    box: SecretBox) -> int:
    try:
        active = active_channel(db.connection())
        if args.action == "list-channels":
            print(json.dumps({"name": DEFAULT_CHANNEL, "source": "[daraja]",
                              "shortcode": config.daraja.shortcode,
                              "active": active == DEFAULT_CHANNEL}))
            for channel in load_channels(db, box):
                print(json.dumps(channel.public() | {"active": active == channel.name}))
            return 0
        if args.action == "use-channel":
            if not args.name:
                return fail("use-channel needs --name (a stored channel, or default)")
            set_active_channel(db, args.name)
            print(f"new STK pushes go out on channel {args.name}")
            return 0
        missing = [env for env in SECRET_ENV.values() if not os.environ.get(env)]
        if not args.name or not args.shortcode or missing:
            return fail("add-channel needs --name, --shortcode and the environment variables "
                        + ", ".join(SECRET_ENV.values()))
        channel = Channel(name=args.name, kind=args.kind, environment=args.environment,
                          base_url=HOSTS[args.environment], shortcode=args.shortcode,
                          till_number=args.till_number,
                          callback_token=secrets.token_urlsafe(24),
                          **{name: os.environ[env] for name, env in SECRET_ENV.items()})
        save_channel(db, box, channel, time.time())
        urls = callback_urls(config.web.public_url or "https://<public_url>",
                             channel.callback_token)
        print(json.dumps({"channel": channel.public(), "callback_urls": urls}, indent=2))
        return 0
    except ValueError as exc:
        return fail(exc)
