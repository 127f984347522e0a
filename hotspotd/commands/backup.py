"""`hotspotd backup PATH`: a consistent copy of the database, safe while the daemon runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from hotspotd.commands.common import add_config_argument, fail
from hotspotd.config import ConfigError, load_config
from hotspotd.ops.backup import BackupError, backup_database

NAME = "backup"
HELP = "copy the database to PATH (SQLite online backup; safe while hotspotd runs)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="backup file to write")
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        if args.path.exists() and args.path.is_dir():
            return fail(f"{args.path} is a directory; give a file name")
        info = backup_database(Path(config.database.path), args.path)
    except (ConfigError, BackupError, OSError) as exc:
        return fail(exc)
    print(f"backup written: {info.path} ({info.bytes} bytes, schema {info.schema_version},"
          f" {info.payments} payments)")
    return 0
