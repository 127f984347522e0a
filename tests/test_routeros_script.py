"""`hotspotd routeros-script`: the RouterOS set-up script and the router-side login pages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hotspotd.cli import main
from hotspotd.config import load_config
from hotspotd.router.script import inputs_from, quote, render_router_page, render_script


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "hotspotd.toml"
    path.write_text(
        '[radius]\nsecret = "rad-secret-1"\nmac_password = "mac-pass-1"\n'
        '[router]\npassword = "api-pass-1"\ncoa_port = 3799\nappliance_address = "10.0.0.2"\n'
        'use_tls = true\n[web]\nport = 8080\npublic_url = "https://wifi.example.com"\n')
    return path


def test_script_covers_every_router_setting(tmp_path: Path) -> None:
    script = render_script(inputs_from(load_config(config_file(tmp_path))))
    for expected in (
            'add address=10.0.0.2 secret="rad-secret-1" service=hotspot',
            "authentication-port=1812 accounting-port=1813",
            "/radius incoming\nset accept=yes port=3799",
            "require-message-auth=yes-for-request-resp",
            "use-radius=yes radius-interim-update=received",
            "login-by=mac,http-chap,http-pap", 'mac-auth-password="mac-pass-1"',
            "walled-garden ip\nadd dst-address=10.0.0.2 action=accept",
            "dst-host=wifi.example.com", 'password="api-pass-1" address=10.0.0.2/32',
            "set api-ssl disabled=no",
            "add code=114 name=capport value=\"'https://wifi.example.com/captive-portal/api'\""):
        assert expected in script, expected
    assert "!sensitive" in script and ",write," in script and "!policy" in script


def test_placeholders_keep_secrets_out(tmp_path: Path) -> None:
    script = render_script(inputs_from(load_config(config_file(tmp_path)), placeholders=True))
    assert "rad-secret-1" not in script and "api-pass-1" not in script
    assert 'secret="<radius secret>"' in script


def test_values_that_could_inject_commands_are_refused() -> None:
    with pytest.raises(ValueError):
        quote('x" ; /system reset-configuration')
    assert quote("plain") == '"plain"'


def test_login_page_hands_the_customer_to_the_portal() -> None:
    page = render_router_page("login.html", "https://wifi.example.com")
    assert "__HOTSPOTD" not in page
    for field in ("mac=$(mac-esc)", "ip=$(ip-esc)", "link-login-only=$(link-login-only-esc)",
                  "link-orig=$(link-orig-esc)", "chap-id=$(chap-id-esc)",
                  "chap-challenge=$(chap-challenge-esc)"):
        assert field in page
    assert 'url=https://wifi.example.com/?mac=' in page


def test_command_prints_script_and_pages(tmp_path: Path, capsys) -> None:
    path = config_file(tmp_path)
    assert main(["routeros-script", "--config", str(path)]) == 0
    assert capsys.readouterr().out.startswith("# hotspotd: RouterOS set-up")
    assert main(["routeros-script", "--config", str(path), "--page", "login.html"]) == 0
    assert "https://wifi.example.com/?mac=$(mac-esc)" in capsys.readouterr().out
    assert main(["routeros-script", "--config", str(tmp_path / "missing.toml")]) == 1
    assert capsys.readouterr().err.startswith("hotspotd: ")


@pytest.mark.parametrize("placeholders", [False, True])
def test_script_passes_an_independent_routeros_checker(tmp_path: Path,
                                                       placeholders: bool) -> None:
    """routeros-lsp (PyPI, written by others, with RouterOS 7's command database) finds
    no syntax error, unknown menu, command or parameter in the script, warnings included;
    and it does find one when a parameter is misspelt (the check can fail)."""
    script = render_script(inputs_from(load_config(config_file(tmp_path)),
                                       placeholders=placeholders))
    good, bad = tmp_path / "hotspotd.rsc", tmp_path / "misspelt.rsc"
    good.write_text(script)
    bad.write_text(script + "/ip hotspot profile set [find] use-radiuss=yes\n")
    checker = [sys.executable, "-m", "routeros_lsp", "check", "--strict", "--format", "json"]
    clean = subprocess.run([*checker, str(good)], capture_output=True, text=True, timeout=60)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert json.loads(clean.stdout) == []
    found = subprocess.run([*checker, str(bad)], capture_output=True, text=True, timeout=60)
    assert found.returncode == 1 and "use-radiuss" in found.stdout
