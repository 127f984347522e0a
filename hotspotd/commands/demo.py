"""`hotspotd demo`: the whole appliance on one machine, no router and no Safaricom account.

Starts the daemon with both embedded simulators on loopback, seeds the plans, prints every
address, and writes them to `demo.json` in the data directory once every listener is up.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from hotspotd.app import Appliance
from hotspotd.commands.common import fail, prepare_daemon, stop_on_signals, wait_for_stop
from hotspotd.config import Config, ConfigError, load_config
from hotspotd.generated_secrets import write_private_json
from hotspotd.ledger.plans import seed_demo_plans
from hotspotd.resources import data_dir
from hotspotd.secretbox import create_key_file

log = logging.getLogger(__name__)

NAME = "demo"
HELP = ("run the whole appliance with the Daraja and MikroTik simulators on loopback, with a"
        " seeded database")
DEMO_FILE = "demo.json"
TEST_NUMBER = "254708374149"
DEMO_MAC = "AA:BB:CC:00:00:01"  # this machine's browser, as the router's host table lists it


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the database and demo.json go (default: a new temp dir)")
    parser.add_argument("--host", default="127.0.0.1", help="address for every listener")
    parser.add_argument("--port", type=int, default=0,
                        help="portal port (default: a free port)")
    parser.add_argument("--routers", type=int, default=1, choices=range(1, 9),
                        metavar="N", help="simulated routers at the venue (1-8, default 1):"
                        " a device that walks from one's WiFi to another's keeps its time")


def run(args: argparse.Namespace) -> int:
    try:
        config = demo_config(args.data_dir, args.host, args.port, routers=args.routers)
        prepare_daemon(config)
    except (ConfigError, ValueError) as exc:
        return fail(exc)
    stop = stop_on_signals()
    return run_demo(config, lambda: wait_for_stop(stop))


def demo_config(data_dir_arg: Path | None, host: str, port: int, *,
                routers: int = 1) -> Config:
    """The demo configuration: both simulators, everything on `host`, data in one folder."""
    directory = data_dir_arg or Path(tempfile.mkdtemp(prefix="hotspotd-demo-"))
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    config = load_config(data_dir("config") / "demo.toml")
    config = config.replace("database", path=str(directory / "hotspotd.sqlite3"))
    key_file = directory / "secret.key"
    if not key_file.exists():
        create_key_file(key_file)
    config = config.replace("security", key_file=str(key_file))
    config = config.replace("web", host=host, port=port)
    config = config.replace("radius", host=host, clients=[host])
    config = config.replace("simulators", host=host)
    for number in range(2, routers + 1):  # more simulated routers, same credentials
        router = config.router
        config = config.with_router(f"r{number}", backend="simulator", user=router.user,
                                    password=router.password)
    return config


def run_demo(config: Config, wait: Callable[[], None]) -> int:
    appliance = Appliance(config)
    try:
        appliance.start()
        with appliance.db.write() as conn:
            seed_demo_plans(conn, appliance.now())
        browser = browser_address(config.web.host)
        appliance.router_simulator.add_host(DEMO_MAC, browser)  # this machine's browser
        info = demo_info(appliance, browser)
        write_private_json(Path(config.database.path).parent / DEMO_FILE, info)
        print(describe(info), flush=True)
        wait()
    finally:
        appliance.stop()
    return 0


def browser_address(web_host: str) -> str:
    """The source address a browser on this machine uses to reach the portal."""
    return "127.0.0.1" if web_host in ("0.0.0.0", "::", "localhost") else web_host


def demo_info(appliance: Appliance, browser: str) -> dict[str, object]:
    addresses = appliance.addresses
    return {
        "portal_url": addresses["portal_url"],
        "phone_url": addresses["phone_url"],
        "daraja_url": addresses["daraja_url"],
        "router_status_url": addresses["router_status_url"],
        "database": addresses["database"],
        "data_dir": str(appliance.data_dir),
        "radius": addresses["radius"],
        "router": addresses["router"],
        "routers": addresses.get("routers", {}),
        "router_status_urls": {key[len("router_status_url_"):]: value for key, value
                               in addresses.items() if key.startswith("router_status_url_")},
        "test_phone": TEST_NUMBER,
        "demo_mac": DEMO_MAC,
        "demo_ip": browser,
        "admin_url": addresses["admin_url"],
        "owner_setup_code": addresses.get("owner_setup_code", ""),
    }


def describe(info: dict[str, object]) -> str:
    radius = info["radius"]
    router = info["router"]
    assert isinstance(radius, dict) and isinstance(router, dict)
    portal = info["portal_url"]
    hosts = f"{info['router_status_url']}hosts"
    return "\n".join([
        "hotspotd demo is running.",
        f"  Portal (this browser is phone {info['demo_mac']} at {info['demo_ip']}): {portal}",
        f"  Owner UI:                        {info['admin_url']}",
        *([f"    first visit: the one-time set-up code {info['owner_setup_code']}"]
          if info["owner_setup_code"] else []),
        f"  M-Pesa phone (approve prompts):  {info['phone_url']}",
        f"  Router simulator, active hosts:  {info['router_status_url']}",
        *[f"  Router {name}, active hosts:".ljust(35) + str(url)
          for name, url in dict(info["router_status_urls"]).items()],
        f"  Daraja simulator:                {info['daraja_url']}",
        f"  RADIUS auth/acct:                {radius['host']}:{radius['auth_port']}"
        f" / {radius['acct_port']}",
        f"  RouterOS API (simulator):        {router['api_host']}:{router['api_port']}"
        f" user {router['user']}",
        f"  Database:                        {info['database']}",
        f"  Everything, as JSON:             {info['data_dir']}/demo.json",
        f"Pay with {info['test_phone']}: it approves by itself after about 2 s.",
        "More phones: each is its own address in the router's host table, e.g.",
        f"  curl -X POST {hosts} -H 'Content-Type: application/json'"
        " -d '{\"mac\": \"AA:BB:CC:00:00:02\", \"address\": \"127.0.0.2\"}'",
        f"  curl --interface 127.0.0.2 {portal}",
        "Stop with Ctrl-C.",
    ])
