"""`hotspotd routeros-script`: print the RouterOS script for the configured appliance."""

from __future__ import annotations

import argparse
from typing import Any

from hotspotd.commands.common import add_config_argument, fail
from hotspotd.config import Config, ConfigError, load_config
from hotspotd.router.script import ROUTER_PAGES, inputs_from, render_router_page, render_script

NAME = "routeros-script"
HELP = "print the RouterOS script that sets the MikroTik router up for this appliance"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--placeholders", action="store_true",
                        help="leave the secrets as <...> to fill in (to share the script)")
    parser.add_argument("--router", metavar="NAME",
                        help="the script for this router of the venue ([router]'s name, or a"
                             " [routers.<name>]); default: the first")
    parser.add_argument("--page", choices=ROUTER_PAGES,
                        help="print this router-side hotspot page (portal/router/) with the"
                             " portal address filled in, instead of the script")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        if args.router:
            config = config.for_router(router_named(config, args.router))
        inputs = inputs_from(config, placeholders=args.placeholders)
        if args.page:
            script = render_router_page(args.page, inputs.portal_url)
        else:
            script = render_script(inputs)
    except (ConfigError, ValueError) as error:
        return fail(error)
    print(script, end="")
    return 0


def router_named(config: Config, name: str) -> Any:
    routers = {router.name: router for router in config.routers()}
    if name not in routers:
        raise ConfigError(f"no router named {name!r}; the configuration has"
                          f" {', '.join(sorted(routers))}")
    return routers[name]
