"""A venue's configuration file whose links point at simulators, as at the real thing.

    path = venue_config(tmp_path, daraja, router, router={"password": "p"})

Production backends (`daraja`, `routeros`) against a `DarajaSimulator` and a
`MikrotikSimulator` running in the test; RADIUS on two free UDP ports. `sections` change or
add keys (a None value removes one), as `support.daemon.merge` does. Written 0600.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from hotspotd.simulators.daraja import DarajaSimulator
from hotspotd.simulators.mikrotik import MikrotikSimulator
from support.daemon import merge, to_toml


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def venue_config(tmp_path: Path, daraja: DarajaSimulator, router: MikrotikSimulator, /,
                 **sections: dict[str, Any]) -> Path:
    api_host, api_port = router.api_address
    (tmp_path / "var").mkdir(exist_ok=True)
    base = {
        "database": {"path": str(tmp_path / "var" / "hotspotd.sqlite3")},
        "daraja": {"backend": "daraja", "base_url": daraja.url, "consumer_key": "ck",
                   "consumer_secret": "cs", "passkey": "pk"},
        "radius": {"host": "127.0.0.1", "auth_port": free_udp_port(),
                   "acct_port": free_udp_port(), "secret": "radius-s3cret",
                   "mac_password": "mac-pass"},
        "router": {"backend": "routeros", "host": api_host, "api_port": api_port,
                   "coa_port": router.coa_address[1]},
    }
    path = tmp_path / "hotspotd.toml"
    path.write_text(to_toml(merge(base, sections)))
    path.chmod(0o600)
    return path
