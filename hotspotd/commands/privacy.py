"""`hotspotd privacy export|erase|retention`: data-subject requests (Kenya DPA), audited.

`export --phone N` prints (or writes, with --output) everything held about a number as JSON
(payments, callbacks, rate-limit rows keyed by it); `erase --phone N` erases it (amounts and
receipts stay for the books); `retention` applies `[privacy] retention_days` now (the daemon
also does it daily; rate-limit rows holding a number go after a day).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from pathlib import Path

from hotspotd.commands.common import add_config_argument, fail
from hotspotd.config import ConfigError, load_config
from hotspotd.daraja.msisdn import InvalidPhoneNumber
from hotspotd.ops import privacy
from hotspotd.store.db import Database

NAME = "privacy"
HELP = "export or erase one phone number's personal data; apply the retention period"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("export", "erase", "retention"))
    parser.add_argument("--phone", help="the data subject's phone number (export, erase)")
    parser.add_argument("--output", "-o", type=Path, help="export: write JSON here (0600)")
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    if args.action != "retention" and not args.phone:
        return fail(f"privacy {args.action} needs --phone")
    try:
        config = load_config(args.config)
        db = Database(config.database.path).open()
    except (ConfigError, OSError, RuntimeError) as exc:
        return fail(exc)
    actor = f"cli:{_user()}"
    try:
        if args.action == "export":
            return _export(db, args, actor)
        if args.action == "erase":
            rows = privacy.erase_phone(db, args.phone, now=time.time(), actor=actor)
            print(f"erased: {rows} row(s) changed; amounts and receipts kept")
            return 0
        rows = privacy.apply_retention(db, retention_days=config.privacy.retention_days,
                                       now=time.time(), actor=actor)
        print(f"retention ({config.privacy.retention_days} days): {rows} row(s) erased")
        return 0
    except InvalidPhoneNumber:
        return fail(f"{args.phone!r} is not a Kenyan mobile number")
    finally:
        db.close()


def _export(db: Database, args: argparse.Namespace, actor: str) -> int:
    data = privacy.export_phone(db, args.phone, now=time.time(), actor=actor)
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return 0
    fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    print(f"exported to {args.output}")
    return 0


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())
