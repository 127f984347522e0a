"""What several commands share: logging set-up and turning errors into one line."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from hotspotd import failpoints
from hotspotd.config import OPTIONS, Config
from hotspotd.ops.logs import JournalFormatter, MaskingFilter, under_journal

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TICK_SECONDS = 1.0


def configure_logging(config: Config) -> MaskingFilter:
    """Log to stderr, one event per line, secrets of `config` and phone numbers masked.

    Returns the filter, so secrets generated later can be added with `add_secrets`.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JournalFormatter(journal=under_journal()))
    masking = MaskingFilter(config_secrets(config))
    handler.addFilter(masking)
    logging.basicConfig(level=config.logging.level.upper(), handlers=[handler], force=True)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return masking


def config_secrets(config: Config) -> list[str]:
    """Every secret value the configuration holds (to be masked in logs)."""
    return [str(value) for section, options in config.values().items()
            for name, value in options.items()
            if value and (section, name) in OPTIONS and OPTIONS[section, name].secret]


def add_log_secrets(config: Config) -> None:
    """Mask the secrets of `config` (e.g. after generated ones were filled in) from now on."""
    for handler in logging.getLogger().handlers:
        for log_filter in handler.filters:
            if isinstance(log_filter, MaskingFilter):
                log_filter.add_secrets(config_secrets(config))


def prepare_daemon(config: Config) -> None:
    """Logging and crash-injection points for a command that runs the daemon."""
    configure_logging(config)
    failpoints.arm_from_environment()


def fail(message: object) -> int:
    print(f"hotspotd: {message}", file=sys.stderr)
    return 1


def stop_on_signals() -> threading.Event:
    """An Event set by SIGTERM or SIGINT, installed before start-up: a stop asked for while
    the appliance starts (systemd's stop right after its start) is kept, and honoured as
    soon as start-up ends, instead of killing the process half-way."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def wait_for_stop(stop: threading.Event, tick: Callable[[], None] | None = None) -> None:
    """Block until `stop` is set (see `stop_on_signals`), calling `tick()` (the watchdog)
    about every second."""
    while not stop.wait(TICK_SECONDS):
        if tick is not None:
            tick()


DEFAULT_CONFIG = Path("/etc/hotspotd/hotspotd.toml")


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """The `--config/-c FILE` option every command that reads the configuration takes."""
    parser.add_argument("--config", "-c", type=Path, default=DEFAULT_CONFIG,
                        help="TOML configuration file (default: %(default)s)")
