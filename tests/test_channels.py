"""Issue 3: Daraja channels with secrets encrypted at rest; their callback paths work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from support.daemon import to_toml
from support.mpesa import fast_appliance, rows

from hotspotd.mpesa.channels import Channel, load_channels, save_channel
from hotspotd.secretbox import SecretBox, SecretBoxError, create_key_file
from hotspotd.store.db import Database

CHANNEL = Channel(name="till-2", kind="till", environment="sandbox",
                  base_url="https://sandbox.safaricom.co.ke", shortcode="600100",
                  till_number="600200", consumer_key="KEY-plain-1",
                  consumer_secret="SECRET-plain-2", passkey="PASSKEY-plain-3",
                  callback_token="TOKEN-plain-4")


def test_channel_secrets_are_encrypted_at_rest_and_never_shown(tmp_path: Path) -> None:
    create_key_file(tmp_path / "secret.key")
    box = SecretBox.from_key_file(tmp_path / "secret.key")
    db = Database(tmp_path / "db.sqlite3").open()
    try:
        save_channel(db, box, CHANNEL, now=1.0)
        assert load_channels(db, box) == [CHANNEL]
        raw = (tmp_path / "db.sqlite3").read_bytes() + (tmp_path / "db.sqlite3-wal").read_bytes()
        assert b"plain" not in raw
        assert "plain" not in repr(CHANNEL) and "plain" not in str(CHANNEL.public())
        create_key_file(tmp_path / "other.key")
        with pytest.raises(SecretBoxError):
            load_channels(db, SecretBox.from_key_file(tmp_path / "other.key"))
    finally:
        db.close()


def test_a_stored_channel_gets_its_own_callback_path(tmp_path: Path) -> None:
    create_key_file(tmp_path / "secret.key")
    db = Database(tmp_path / "hotspotd.sqlite3").open()
    save_channel(db, SecretBox.from_key_file(tmp_path / "secret.key"), CHANNEL, now=1.0)
    db.close()
    with fast_appliance(tmp_path) as appliance:
        root = appliance.addresses["portal_url"] + "callbacks/"
        answer = requests.post(root + "TOKEN-plain-4/stk", data=b"{", timeout=5)
        assert answer.status_code == 200
        [rejected] = rows(appliance, "SELECT channel, reason FROM callback_rejections")
        assert rejected == {"channel": "till-2", "reason": "body is not JSON"}
        assert requests.post(root + "TOKEN-plain-5/stk", json={}, timeout=5).status_code == 404


def test_add_and_list_channels_from_the_command_line(tmp_path: Path) -> None:
    create_key_file(tmp_path / "secret.key")
    config = tmp_path / "hotspotd.toml"
    config.write_text(to_toml({"database": {"path": str(tmp_path / "db.sqlite3")},
                               "security": {"key_file": str(tmp_path / "secret.key")},
                               "web": {"public_url": "https://wifi.example.net"}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTSPOTD_")} | {
        "HOTSPOTD_CHANNEL_CONSUMER_KEY": "ck-plain", "HOTSPOTD_CHANNEL_CONSUMER_SECRET":
        "cs-plain", "HOTSPOTD_CHANNEL_PASSKEY": "pk-plain"}
    base = [sys.executable, "-m", "hotspotd.cli", "mpesa"]
    added = subprocess.run([*base, "add-channel", "--config", str(config), "--name", "main",
                            "--shortcode", "600300"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert added.returncode == 0, added.stderr
    assert "https://wifi.example.net/callbacks/" in added.stdout
    listed = subprocess.run([*base, "list-channels", "--config", str(config)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert '"name": "main"' in listed.stdout and "600300" in listed.stdout
    assert "plain" not in added.stdout + listed.stdout + added.stderr + listed.stderr
