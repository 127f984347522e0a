"""One module per `hotspotd` subcommand.

Each module defines `NAME`, `HELP`, `add_arguments(parser)` and `run(args) -> int` (the exit
code). To add a command, write its module and list it in COMMANDS.
"""

from __future__ import annotations

from types import ModuleType

from hotspotd.commands import (
    backup,
    check,
    demo,
    hub,
    init,
    mpesa,
    privacy,
    restore,
    routeros_script,
    run,
)

COMMANDS: tuple[ModuleType, ...] = (run, demo, init, check, backup, restore, privacy,
                                    routeros_script, mpesa, hub)
