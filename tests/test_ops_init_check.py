"""`hotspotd init` (files, modes, owner account, refusal to overwrite) and `hotspotd check`
(one line per link with OK/FAIL and the fix) against the real simulators over sockets."""

from __future__ import annotations

import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.venue_config import free_udp_port, venue_config

from hotspotd.admin.accounts import owner_exists, verify_login
from hotspotd.cli import main
from hotspotd.config import load_config
from hotspotd.ops.checks import CheckResult, check_clock, run_checks
from hotspotd.simulators.daraja import DarajaSimulator
from hotspotd.simulators.mikrotik import MikrotikSimulator
from hotspotd.store.db import Database

PASSWORD = "a long owner passphrase"


def init(tmp_path: Path, *extra: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("HOTSPOTD_OWNER_PASSWORD", PASSWORD)
    monkeypatch.setenv("HOTSPOTD_ROUTER_PASSWORD", "router-pass-1")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    return main(["init", "--config", str(tmp_path / "etc" / "hotspotd.toml"),
                 "--data-dir", str(tmp_path / "var"), *extra])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_writes_config_key_data_dir_and_owner(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert init(tmp_path, "--venue", "Mama Mboga Cafe", monkeypatch=monkeypatch) == 0
    etc, var = tmp_path / "etc", tmp_path / "var"
    config = load_config(etc / "hotspotd.toml", env={})
    assert config.venue.name == "Mama Mboga Cafe"
    assert config.database.path == str(var / "hotspotd.sqlite3")
    assert config.router.password == "router-pass-1"
    assert len(config.radius.secret) >= 20 and config.radius.mac_password
    assert mode(etc / "hotspotd.toml") == 0o640 and mode(etc / "secret.key") == 0o600
    assert mode(etc / "secrets") == 0o700 and mode(etc / "secrets" / "radius_secret") == 0o600
    assert mode(var) == 0o750 and mode(var / "hotspotd.sqlite3") == 0o600
    assert (etc / "secret.key").stat().st_size == 32
    text = (etc / "hotspotd.toml").read_text()
    assert "router-pass-1" not in text and config.radius.secret not in text
    db = Database(var / "hotspotd.sqlite3").open()
    try:
        assert owner_exists(db) and verify_login(db, "owner", PASSWORD, now=1.0) is not None
    finally:
        db.close()


def test_init_refuses_to_overwrite_without_force(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert init(tmp_path, monkeypatch=monkeypatch) == 0
    key = (tmp_path / "etc" / "secret.key").read_bytes()
    assert init(tmp_path, "--venue", "Other", monkeypatch=monkeypatch) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (tmp_path / "etc" / "secret.key").read_bytes() == key
    assert init(tmp_path, "--venue", "Other", "--force", monkeypatch=monkeypatch) == 0
    assert "one exists already" in capsys.readouterr().out
    assert (tmp_path / "etc" / "secret.key").read_bytes() != key


def test_check_fails_an_initialised_simulator_install_as_not_for_a_venue(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Every link of a simulator install is fine, but `check` judges a configuration for
    going live: simulated payments and router FAIL it (exit 1)."""
    assert init(tmp_path, "--daraja", "simulator", "--router", "simulator",
                monkeypatch=monkeypatch) == 0
    capsys.readouterr()
    assert main(["check", "--config", str(tmp_path / "etc" / "hotspotd.toml")]) == 1
    lines = capsys.readouterr().out.splitlines()
    names = ["config", "backends", "key file", "database", "daraja", "router",
             "radius ports", "coa", "clock"]
    assert [line.split(":")[0][5:] for line in lines[:-1]] == names
    assert lines[1].startswith("FAIL backends: [daraja] backend = \"simulator\" and [router]")
    assert "hotspotd demo" in lines[1]
    assert all(line.startswith("OK   ") for line in lines[:-1] if "backends" not in line)
    assert lines[-1] == "8 OK, 1 FAIL (backends)"


@pytest.fixture
def real_links() -> Iterator[tuple[DarajaSimulator, MikrotikSimulator]]:
    daraja = DarajaSimulator(consumer_key="ck", consumer_secret="cs", passkey="pk")
    daraja.start("127.0.0.1", 0)
    router = MikrotikSimulator(api_user="hotspotd", api_password="router-pass-1",
                               radius_host="127.0.0.1", radius_auth_port=free_udp_port(),
                               radius_acct_port=free_udp_port(), radius_secret="radius-s3cret")
    router.start("127.0.0.1", 0)
    yield daraja, router
    router.stop()
    daraja.stop()


def write_config(tmp_path: Path, daraja: DarajaSimulator, router: MikrotikSimulator,
                 **changes: str) -> Path:
    values = {"consumer_key": "ck", "consumer_secret": "cs", "router_password": "router-pass-1",
              **changes}
    return venue_config(
        tmp_path, daraja, router, security={"key_file": str(tmp_path / "missing.key")},
        daraja={"consumer_key": values["consumer_key"],
                "consumer_secret": values["consumer_secret"]},
        router={"password": values["router_password"]})


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {result.name: result for result in results}


def test_check_reaches_daraja_router_and_coa_for_real(
        tmp_path: Path, real_links: tuple[DarajaSimulator, MikrotikSimulator]) -> None:
    results = by_name(run_checks(write_config(tmp_path, *real_links), env={}))
    assert results["daraja"].ok and "OAuth token obtained" in results["daraja"].detail
    assert results["router"].ok and "'hotspotd-sim' RouterOS" in results["router"].detail
    assert results["router nat"].ok, results["router nat"]  # the script's rule is there
    assert results["backends"].ok
    assert results["coa"].ok, results["coa"]
    assert results["clock"].ok and "Daraja's clock" in results["clock"].detail
    assert results["radius ports"].ok and results["database"].ok
    key = results["key file"]
    assert not key.ok and "missing" in key.detail and "hotspotd init" in key.fix


def test_check_fails_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  real_links: tuple[DarajaSimulator, MikrotikSimulator]) -> None:
    config = write_config(tmp_path, *real_links, consumer_secret="wrong",
                          router_password="wrong")
    assert main(["check", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    daraja = next(line for line in out.splitlines() if line.startswith("FAIL daraja"))
    assert "OAuth refused" in daraja and "-- fix: check [daraja] consumer_key" in daraja
    router = next(line for line in out.splitlines() if line.startswith("FAIL router"))
    assert "login" in router and "-- fix:" in router
    assert out.splitlines()[-1].startswith("6 OK, 3 FAIL")


def test_check_flags_a_busy_radius_port_and_a_bad_config(tmp_path: Path) -> None:
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    try:
        config = tmp_path / "c.toml"
        config.write_text(f'[radius]\nhost = "127.0.0.1"\nauth_port = {busy.getsockname()[1]}\n'
                          'secret = "s"\nmac_password = "m"\n[router]\nbackend = "simulator"\n'
                          '[daraja]\nbackend = "simulator"\n'
                          f'[database]\npath = "{tmp_path / "db.sqlite3"}"\n')
        results = by_name(run_checks(config, env={}))
    finally:
        busy.close()
    assert not results["radius ports"].ok and "freeradius" in results["radius ports"].fix
    (tmp_path / "bad.toml").write_text("[radius]\nauth_prot = 1\n")
    only = run_checks(tmp_path / "bad.toml", env={})
    assert len(only) == 1 and not only[0].ok and "did you mean 'auth_port'" in only[0].detail


def test_clock_skew_is_reported() -> None:
    config = load_config(None, env={})
    result = check_clock(config, fetch=lambda url: "Mon, 01 Jan 2024 00:00:00 GMT")
    assert not result.ok and "off by" in result.detail and "set-ntp" in result.fix


def test_check_tries_oauth_on_every_stored_channel(
        tmp_path: Path, real_links: tuple[DarajaSimulator, MikrotikSimulator]) -> None:
    from hotspotd.mpesa.channels import Channel, save_channel
    from hotspotd.secretbox import SecretBox, create_key_file

    daraja, router = real_links
    config = write_config(tmp_path, daraja, router)
    create_key_file(tmp_path / "missing.key")  # the key file the config names
    box = SecretBox.from_key_file(tmp_path / "missing.key")
    db = Database(tmp_path / "var" / "hotspotd.sqlite3").open()
    for name, secret in (("good", "cs"), ("stale", "old-secret")):
        save_channel(db, box, Channel(name=name, kind="paybill", environment="sandbox",
                                      base_url=daraja.url, shortcode="174379",
                                      consumer_key="ck", consumer_secret=secret,
                                      passkey="pk", callback_token=f"tok-{name}"), now=1.0)
    db.close()
    results = by_name(run_checks(config, env={}))
    assert results["daraja channel good"].ok
    stale = results["daraja channel stale"]
    assert not stale.ok and "OAuth refused" in stale.detail and "owner UI" in stale.fix


def test_check_uses_the_settings_the_owner_saved_in_the_web_ui(
        tmp_path: Path, real_links: tuple[DarajaSimulator, MikrotikSimulator]) -> None:
    """The file holds an old router password; the owner fixed it in Settings: `check` tests
    what the daemon will run with (the stored, encrypted one)."""
    from hotspotd.admin.settings_store import SettingsStore
    from hotspotd.config import load_config
    from hotspotd.secretbox import create_key_file
    from hotspotd.store.db import Database

    path = write_config(tmp_path, *real_links, router_password="old-pass")
    key = tmp_path / "hotspotd.key"
    create_key_file(key)
    path.write_text(path.read_text().replace(str(tmp_path / "missing.key"), str(key)))
    assert not by_name(run_checks(path, env={}))["router"].ok
    config = load_config(path, env={})
    db = Database(config.database.path).open()
    try:
        SettingsStore(db, config, key_file=key).save(
            "router", {"router__host": config.router.host,
                       "router__api_port": str(config.router.api_port),
                       "router__user": config.router.user, "router__password": "router-pass-1",
                       "router__coa_port": str(config.router.coa_port)},
            username="owner", now=time.time())
    finally:
        db.close()
    results = by_name(run_checks(path, env={}))
    assert results["router"].ok, results["router"]
    assert "router.password" in results["owner settings"].detail
    assert "router-pass-1" not in results["owner settings"].line()
