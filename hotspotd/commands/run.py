"""`hotspotd run`: the appliance, with a configuration file."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from hotspotd import __version__
from hotspotd.commands.common import fail, prepare_daemon, wait_for_stop
from hotspotd.config import Config, ConfigError, load_config

NAME = "run"
HELP = "run the appliance with a configuration file"
DEFAULT_CONFIG = Path("/etc/hotspotd/hotspotd.toml")

log = logging.getLogger("hotspotd")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", type=Path, default=DEFAULT_CONFIG,
                        help="TOML configuration file (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        prepare_daemon(config)
    except (ConfigError, ValueError) as exc:
        return fail(exc)
    return run_appliance(config)


def run_appliance(config: Config) -> int:
    from hotspotd.app import Appliance

    log.info("hotspotd %s starting with %s", __version__, config.source or "defaults")
    appliance = Appliance(config)
    try:
        appliance.start()
    except ConfigError as exc:
        appliance.stop()
        return fail(exc)
    except Exception:
        log.exception("start-up failed")
        appliance.stop()
        return 1
    wait_for_stop()
    appliance.stop()
    log.info("hotspotd stopped")
    return 0
