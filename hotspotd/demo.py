"""`hotspotd demo`: the whole appliance on one machine, no router and no Safaricom account.

Starts the daemon with both embedded simulators on loopback, seeds the plans, prints every
address, and writes them to `demo.json` in the data directory once every listener is up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from hotspotd.app import Appliance, write_json
from hotspotd.billing.plans import seed_demo_plans
from hotspotd.config import Config
from hotspotd.httpserver import ServedApp

log = logging.getLogger(__name__)

DEMO_FILE = "demo.json"
TEST_NUMBER = "254708374149"


def run_demo(config: Config, wait: Callable[[], None]) -> int:
    appliance = Appliance(config)
    try:
        appliance.start()
        with appliance.db.write() as conn:
            seed_demo_plans(conn, appliance.now())
        router_page = ServedApp(appliance.router_simulator.status_app(),
                                config.simulators.host, 0, threads=2,
                                name="router-status").start()
        appliance._stoppers.append(router_page.stop)
        info = demo_info(appliance, router_page.url + "/")
        write_json(Path(config.database.path).parent / DEMO_FILE, info)
        print(describe(info), flush=True)
        wait()
    finally:
        appliance.stop()
    return 0


def demo_info(appliance: Appliance, router_page_url: str) -> dict[str, object]:
    addresses = appliance.addresses
    return {
        "portal_url": addresses["portal_url"],
        "phone_url": addresses["phone_url"],
        "daraja_url": addresses["daraja_url"],
        "router_status_url": router_page_url,
        "database": addresses["database"],
        "data_dir": str(appliance.data_dir),
        "radius": addresses["radius"],
        "router": addresses["router"],
        "test_phone": TEST_NUMBER,
        "demo_mac": "AA:BB:CC:00:00:01",
        "demo_ip": "10.5.50.101",
    }


def describe(info: dict[str, object]) -> str:
    radius = info["radius"]
    router = info["router"]
    assert isinstance(radius, dict) and isinstance(router, dict)
    portal = f"{info['portal_url']}?mac={info['demo_mac']}&ip={info['demo_ip']}"
    return "\n".join([
        "hotspotd demo is running.",
        f"  Portal (as a phone on the WiFi): {portal}",
        f"  M-Pesa phone (approve prompts):  {info['phone_url']}",
        f"  Router simulator, active hosts:  {info['router_status_url']}",
        f"  Daraja simulator:                {info['daraja_url']}",
        f"  RADIUS auth/acct:                {radius['host']}:{radius['auth_port']}"
        f" / {radius['acct_port']}",
        f"  RouterOS API (simulator):        {router['api_host']}:{router['api_port']}"
        f" user {router['user']}",
        f"  Database:                        {info['database']}",
        f"  Everything, as JSON:             {info['data_dir']}/demo.json",
        f"Pay with {info['test_phone']}: it approves by itself after about 2 s.",
        "Stop with Ctrl-C.",
    ])
