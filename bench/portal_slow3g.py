"""The captive portal on a slow phone link: first-view bytes and time to "connected".

Runs the whole demo appliance in-process, opens the portal in Debian's headless Chromium at
360×640 under Chrome DevTools' "Slow 3G" profile (2,000 ms latency, 50,000 B/s down and
up: DevTools' 500 kbit/s × 0.8), and measures:

- `first_view_bytes`: every byte on the wire for the first view (CDP `encodedDataLength`:
  headers + compressed bodies), with the request count and the hosts contacted;
- `first_view_load_ms`: navigation start → `load` event;
- `approval_to_connected_ms`: the simulator's prompt approved (programmatically, the same
  call the phone page's Approve button makes) → the page shows "Connected".

Each run is a new phone: the browser's address on this machine is 127.0.0.1, so each run's
MAC joins the router simulator's WiFi there (the previous run's device left; its address
went to the next one, as a DHCP lease does), and the page is opened with that MAC and
address in the query string, as the router's redirect sends them. The appliance places
every request by the router's host table; `[web] host_cache_seconds = 0` makes it ask the
router on every request, since the address changes hands between runs (a RouterOS API
round trip of about a millisecond on loopback, nothing beside Slow 3G's 2 s).

    .venv/bin/python bench/portal_slow3g.py [--runs 5] [--no-throttle]

Results: bench/results/portal/slow3g.json (and the screenshots of the last run).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.appliance import running_appliance  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "portal"
BROWSER_ADDRESS = "127.0.0.1"  # where Chromium's requests to the portal come from
SLOW_3G = {"offline": False, "latency": 2000, "downloadThroughput": 50_000,
           "uploadThroughput": 50_000}
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def open_phone(browser: Any, throttle: bool) -> tuple[Any, Any, list[dict[str, Any]]]:
    context = browser.new_context(viewport={"width": 360, "height": 640})
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    if throttle:
        cdp.send("Network.emulateNetworkConditions", SLOW_3G)
    wire: list[dict[str, Any]] = []
    urls: dict[str, str] = {}
    cdp.on("Network.requestWillBeSent",
           lambda event: urls.__setitem__(event["requestId"], event["request"]["url"]))
    cdp.on("Network.loadingFinished", lambda event: wire.append(
        {"url": urls.get(event["requestId"], "?"), "bytes": event["encodedDataLength"]}))
    return context, page, wire


def one_run(appliance: Any, browser: Any, index: int, throttle: bool) -> dict[str, Any]:
    mac = f"02:B5:00:00:00:{index:02X}"
    appliance.router_simulator.add_host(mac, BROWSER_ADDRESS)  # a new phone joins the WiFi
    context, page, wire = open_phone(browser, throttle)
    query = urlencode({"mac": mac, "ip": BROWSER_ADDRESS})
    started = time.monotonic()
    page.goto(appliance.addresses["portal_url"] + "?" + query, wait_until="load",
              timeout=120_000)
    load_ms = (time.monotonic() - started) * 1000
    first_view = list(wire)
    page.fill("#phone", f"07110003{index:02d}")
    page.click("#buy button[type=submit]")
    page.wait_for_selector("text=Check your phone", timeout=120_000)
    checkout = appliance.db.query_one(
        "SELECT checkout_request_id FROM payments WHERE mac = ? ORDER BY id DESC LIMIT 1",
        (mac,))[0]
    approved = time.monotonic()
    appliance.daraja_simulator.resolve(checkout, "approve")
    page.wait_for_selector("#title:has-text('Connected')", timeout=120_000)
    connected_ms = (time.monotonic() - approved) * 1000
    if index == 0:
        RESULTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(RESULTS / f"slow3g-connected{'' if throttle else '-fast'}.png"))
    context.close()
    return {"first_view_bytes": sum(item["bytes"] for item in first_view),
            "first_view_requests": len(first_view),
            "first_view_hosts": sorted({urlsplit(item["url"]).netloc for item in first_view}),
            "first_view_load_ms": round(load_ms), "approval_to_connected_ms": round(connected_ms)}


def summarise(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = [run[key] for run in runs]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-throttle", action="store_true")
    args = parser.parse_args()
    throttle = not args.no_throttle
    with running_appliance(Path(tempfile.mkdtemp(prefix="portal-bench-")),
                           web={"host_cache_seconds": 0}) as appliance, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS,
                                             headless=True)
        runs = [one_run(appliance, browser, index, throttle) for index in range(args.runs)]
        browser.close()
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "network": SLOW_3G if throttle else "unthrottled loopback",
        "runs": runs,
        "first_view_bytes": summarise(runs, "first_view_bytes"),
        "first_view_load_ms": summarise(runs, "first_view_load_ms"),
        "approval_to_connected_ms": summarise(runs, "approval_to_connected_ms"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "slow3g.json" if throttle else "unthrottled.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({key: result[key] for key in ("network", "first_view_bytes",
                                                    "first_view_load_ms",
                                                    "approval_to_connected_ms")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
