"""The `hotspotd` command: run the appliance, or the whole demo on one machine."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from hotspotd import __version__, failpoints
from hotspotd.config import Config, ConfigError, load_config
from hotspotd.resources import data_dir

log = logging.getLogger("hotspotd")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotspotd",
        description="WiFi hotspot billing appliance for MikroTik routers, paid with M-Pesa.")
    parser.add_argument("--version", action="version", version=f"hotspotd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="run the appliance with a configuration file")
    run.add_argument("--config", "-c", type=Path, default=Path("/etc/hotspotd/hotspotd.toml"),
                     help="TOML configuration file (default: %(default)s)")

    demo = commands.add_parser(
        "demo", help="run the whole appliance with the Daraja and MikroTik simulators on "
                     "loopback, with a seeded database")
    demo.add_argument("--data-dir", type=Path, default=None,
                      help="where the database and demo.json go (default: a new temp dir)")
    demo.add_argument("--host", default="127.0.0.1", help="address for every listener")
    demo.add_argument("--port", type=int, default=0,
                      help="portal port (default: a free port)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            config = load_config(args.config)
        else:
            config = demo_config(args.data_dir, args.host, args.port)
        logging.basicConfig(level=config.logging.level.upper(), format=LOG_FORMAT,
                            stream=sys.stderr)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        failpoints.arm_from_environment()
    except (ConfigError, ValueError) as exc:
        print(f"hotspotd: {exc}", file=sys.stderr)
        return 1
    if args.command == "demo":
        from hotspotd.demo import run_demo

        return run_demo(config, wait_for_stop)
    return run_appliance(config)


def demo_config(data_dir_arg: Path | None, host: str, port: int) -> Config:
    directory = data_dir_arg or Path(tempfile.mkdtemp(prefix="hotspotd-demo-"))
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    config = load_config(data_dir("config") / "demo.toml")
    config = config.replace("database", path=str(directory / "hotspotd.sqlite3"))
    config = config.replace("web", host=host, port=port)
    config = config.replace("radius", host=host, clients=[host])
    return config.replace("simulators", host=host)


def run_appliance(config: Config) -> int:
    from hotspotd.app import Appliance

    log.info("hotspotd %s starting with %s", __version__, config.source or "defaults")
    appliance = Appliance(config)
    try:
        appliance.start()
    except ConfigError as exc:
        print(f"hotspotd: {exc}", file=sys.stderr)
        appliance.stop()
        return 1
    except Exception:
        log.exception("start-up failed")
        appliance.stop()
        return 1
    wait_for_stop()
    appliance.stop()
    log.info("hotspotd stopped")
    return 0


def wait_for_stop() -> None:
    """Block until SIGTERM or SIGINT."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


if __name__ == "__main__":
    raise SystemExit(main())
