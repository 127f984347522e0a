"""The `hotspotd` command line: one subcommand per module in `hotspotd.commands`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from hotspotd import __version__
from hotspotd.commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotspotd",
        description="WiFi hotspot billing appliance for MikroTik routers, paid with M-Pesa.")
    parser.add_argument("--version", action="version", version=f"hotspotd {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = subparsers.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.add_arguments(sub)
        sub.set_defaults(handler=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
