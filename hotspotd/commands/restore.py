"""`hotspotd restore PATH`: replace the database by a backup (stop the daemon first).

The backup is checked first; the database it replaces is kept in the backup directory as
`hotspotd-pre-restore-<time>.sqlite3`. Migrations run at the next start.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hotspotd.commands.common import add_config_argument, fail
from hotspotd.config import ConfigError, load_config
from hotspotd.ops.backup import BackupError, restore_database
from hotspotd.ops.lock import DataDirBusy

NAME = "restore"
HELP = "replace the database by the backup PATH (stop hotspotd first)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="backup file to restore")
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        database = Path(config.database.path)
        keep = Path(config.backup.directory or database.parent / "backups")
        info = restore_database(args.path, database, keep_copy_in=keep)
    except (ConfigError, BackupError, DataDirBusy, OSError) as exc:
        return fail(exc)
    print(f"restored {args.path} into {info.path} (schema {info.schema_version},"
          f" {info.payments} payments); start hotspotd again")
    return 0
