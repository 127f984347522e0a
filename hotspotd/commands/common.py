"""What several commands share: logging set-up and turning errors into one line."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from hotspotd import failpoints
from hotspotd.config import Config

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(config: Config) -> None:
    logging.basicConfig(level=config.logging.level.upper(), format=LOG_FORMAT,
                        stream=sys.stderr, force=True)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def prepare_daemon(config: Config) -> None:
    """Logging and crash-injection points for a command that runs the daemon."""
    configure_logging(config)
    failpoints.arm_from_environment()


def fail(message: object) -> int:
    print(f"hotspotd: {message}", file=sys.stderr)
    return 1


def wait_for_stop() -> None:
    """Block until SIGTERM or SIGINT."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
