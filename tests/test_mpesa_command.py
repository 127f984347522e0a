"""`hotspotd mpesa register-c2b` against the Daraja simulator over HTTP."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

from support.daemon import to_toml

from hotspotd.simulators.daraja import DarajaSimulator


def test_register_c2b_prints_darajas_answer(tmp_path: Path) -> None:
    key, secret, passkey = (secrets.token_hex(8) for _ in range(3))
    sim = DarajaSimulator(consumer_key=key, consumer_secret=secret, passkey=passkey)
    sim.start()
    try:
        config = tmp_path / "hotspotd.toml"
        config.write_text(to_toml({
            "web": {"public_url": "https://hotspot.example.net", "callback_token": "tok3n"},
            "database": {"path": str(tmp_path / "db.sqlite3")},
            "daraja": {"backend": "daraja", "base_url": sim.url, "consumer_key": key,
                       "consumer_secret": secret, "passkey": passkey}}))
        config.chmod(0o600)
        done = subprocess.run([sys.executable, "-m", "hotspotd.cli", "mpesa", "register-c2b",
                               "--config", str(config)], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["ResponseCode"] == "0"
        assert sim.c2b.urls == {
            "confirmation": "https://hotspot.example.net/callbacks/tok3n/c2b/confirmation",
            "validation": "https://hotspot.example.net/callbacks/tok3n/c2b/validation",
            "response_type": "Completed"}
        assert secret not in done.stdout + done.stderr
    finally:
        sim.stop()
