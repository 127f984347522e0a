"""Run the whole appliance in-process on loopback (demo configuration, ports 0) for tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hotspotd.app import Appliance
from hotspotd.commands.demo import demo_config
from hotspotd.ledger.plans import seed_demo_plans


@contextmanager
def running_appliance(data_dir: Path, **sections: dict[str, Any]) -> Iterator[Appliance]:
    """Start the demo appliance; `sections` override config, e.g. settlement={...}."""
    config = demo_config(data_dir, "127.0.0.1", 0)
    for section, values in sections.items():
        config = config.replace(section, **values)
    appliance = Appliance(config)
    try:
        appliance.start()
        with appliance.db.write() as conn:
            seed_demo_plans(conn, appliance.now())
        yield appliance
    finally:
        appliance.stop()
