"""`hotspotd check`: config, database, Daraja, router API, RADIUS ports, CoA, clock.

One line per check, `OK` or `FAIL` with the fix; the exit code is 1 if anything failed.
"""

from __future__ import annotations

import argparse

from hotspotd.commands.common import add_config_argument
from hotspotd.ops.checks import run_checks

NAME = "check"
HELP = "check the configuration and every link (Daraja, router, RADIUS, CoA, clock)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    results = run_checks(args.config)
    for result in results:
        print(result.line(), flush=True)
    failed = [r.name for r in results if not r.ok]
    print(f"{len(results) - len(failed)} OK, {len(failed)} FAIL" +
          (f" ({', '.join(failed)})" if failed else ""))
    return 1 if failed else 0
