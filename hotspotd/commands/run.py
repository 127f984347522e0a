"""`hotspotd run`: the appliance, with a configuration file."""

from __future__ import annotations

import argparse
import gc
import logging
import sys

from hotspotd import __version__
from hotspotd.commands.common import (
    add_config_argument,
    add_log_secrets,
    fail,
    prepare_daemon,
    stop_on_signals,
    wait_for_stop,
)
from hotspotd.config import Config, ConfigError, load_config
from hotspotd.hub.shipper import HubUnavailable
from hotspotd.ops.lock import DataDirBusy
from hotspotd.ops.notify import SystemdNotifier, Watchdog

NAME = "run"
HELP = "run the appliance with a configuration file"

log = logging.getLogger("hotspotd")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


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
    add_log_secrets(appliance.config)  # the generated ones too
    notifier = SystemdNotifier()
    stop = stop_on_signals()
    try:
        appliance.start()
    except (ConfigError, DataDirBusy, HubUnavailable) as exc:
        appliance.stop()
        return fail(exc)
    except Exception:
        log.exception("start-up failed")
        appliance.stop()
        return 1
    print_setup_code(appliance.addresses)
    # What start-up built lives as long as the process: keep it out of the full garbage
    # collections, which otherwise hold the GIL ~30 ms over it while RADIUS waits.
    gc.freeze()
    # systemd (Type=notify): every listener is up; then ping the watchdog while healthy.
    notifier.ready(f"serving {appliance.addresses['portal_url']}")
    wait_for_stop(stop, Watchdog(notifier, appliance.ops.problems).tick)
    log.info("hotspotd stopping: finishing in-flight work")
    notifier.stopping()
    appliance.stop()
    notifier.close()
    log.info("hotspotd stopped")
    return 0


def print_setup_code(addresses: dict[str, object]) -> None:
    """While no owner account exists: the one-time code for the owner UI's set-up page, on
    stderr (the console, or the journal under systemd) besides the log line."""
    code = addresses.get("owner_setup_code")
    if code:
        print(f"hotspotd: no owner account yet. Open {addresses['admin_url']}setup and enter"
              f" the one-time set-up code {code}", file=sys.stderr, flush=True)
