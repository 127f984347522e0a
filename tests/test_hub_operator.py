"""The operator's side, as docs/HUB.md tells it: commands, revocation, the owner UI over
HTTPS with real money from two venues, and the hub's configuration checks."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests
from support import hub as hub_fixtures
from support.hub import ApplianceSide, HubProcess, sell, wait_for

from hotspotd.config import ConfigError
from hotspotd.hub.config import load_hub_config
from hotspotd.hub.dashboard import period_starts

pg_cluster, hub_dsn = hub_fixtures.pg_cluster, hub_fixtures.hub_dsn  # fixtures

PASSWORD = "correct horse battery"


def enrolled(hub: HubProcess, directory: Path, venue: str) -> ApplianceSide:
    made = hub.cli("enroll", "--venue", venue, "--network", "Nairobi CBD")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    appliance = ApplianceSide(directory)
    done = appliance.cli("enroll", "--hub-url", hub.url, "--token", token,
                         "--ca-file", str(hub.cert))
    assert done.returncode == 0, done.stderr
    assert token not in done.stdout + done.stderr
    return appliance


def login(hub: HubProcess, password: str = PASSWORD) -> tuple[requests.Session, requests.Response]:
    session = requests.Session()
    session.verify = str(hub.cert)
    session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides session.verify
    page = session.get(hub.url + "login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)[1]
    answer = session.post(hub.url + "login", data={"csrf": csrf, "username": "operator",
                                                   "password": password})
    return session, answer


def test_owner_ui_shows_each_venue_and_all_together_over_https(
        tmp_path: Path, hub_dsn: str) -> None:
    hub = HubProcess(tmp_path / "hub", hub_dsn).start()
    venues = [enrolled(hub, tmp_path / "a", "Cafe A"), enrolled(hub, tmp_path / "b", "Cafe B")]
    try:
        made = hub.cli("owner", "--username", "operator", stdin=PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
        now = time.time()
        sell(venues[0].db, 3, now=now)                    # 60 today at A
        sell(venues[1].db, 2, now=now)                    # 40 today at B
        sell(venues[1].db, 1, start=10, now=period_starts(now, 180).month - 86400)
        for appliance in venues:
            appliance.start_shipper()
        wait_for(lambda: all(a.db.query("SELECT COUNT(*) FROM hub_journal WHERE seq >"
                                        " (SELECT shipped_seq FROM hub_state)")[0][0] == 0
                             and a.db.query("SELECT last_ok_at FROM hub_state")[0][0]
                             for a in venues), timeout=20, message="both venues shipped")
        assert requests.get(hub.url, verify=str(hub.cert), allow_redirects=False
                            ).status_code == 302  # the UI needs a login
        _, refused = login(hub, "wrong password!")
        assert refused.status_code == 401
        session, answer = login(hub)
        assert answer.status_code == 200 and "All venues" in answer.text
        assert re.search(r'id="total-today">100<', answer.text)
        rows = dict(re.findall(r'<a href="/venues/\d+">(Cafe [AB])</a></td>\s*<td>[^<]*</td>\s*'
                               r'<td class="today">(\d+)</td>', answer.text))
        assert rows == {"Cafe A": "60", "Cafe B": "40"}
        venue_b = re.search(r'<a href="(/venues/\d+)">Cafe B', answer.text)[1]
        page = session.get(hub.url.rstrip("/") + venue_b)
        assert re.search(r'id="venue-today">40<', page.text)
        assert "R00000010" in page.text and "2547*****149" in page.text
        assert ">ok<" in page.text  # heard from recently
        no_csrf = session.post(hub.url + "logout")
        assert no_csrf.status_code == 400
    finally:
        for appliance in venues:
            appliance.close()
        hub.stop()


def test_a_revoked_venue_is_refused_with_the_reason(tmp_path: Path, hub_dsn: str) -> None:
    hub = HubProcess(tmp_path / "hub", hub_dsn).start()
    appliance = enrolled(hub, tmp_path / "a", "Cafe A")
    try:
        revoked = hub.cli("revoke", "--venue", "Cafe A", "--reason", "box stolen")
        assert revoked.returncode == 0 and "revoked" in revoked.stdout
        sell(appliance.db, 1)
        appliance.start_shipper()
        error = wait_for(lambda: appliance.db.query("SELECT last_error FROM hub_state")[0][0],
                         timeout=15, message="the refusal recorded")
        assert "403 revoked" in error and "box stolen" in error
        status = appliance.cli("status")
        assert "403 revoked" in status.stdout
        assert "revoked appliance" in hub.log()
        unknown = hub.cli("revoke", "--venue", "Nowhere")
        assert unknown.returncode == 1 and "no venue named 'Nowhere'" in unknown.stderr
    finally:
        appliance.close()
        hub.stop()


def test_hub_command_errors_are_one_line(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('[hub]\ndsn = "host=127.0.0.1 port=1 dbname=x connect_timeout=1"\n'
                      'insecure_http = true\nhost = "127.0.0.1"\n')
    answer = hub_fixtures.hotspotd_cli("hub", "enroll", "--config", str(config),
                                       "--venue", "Cafe A")
    assert answer.returncode == 1
    assert answer.stderr.startswith("hotspotd: cannot connect to the hub database")


@pytest.mark.parametrize(("text", "message"), [
    ('[hub]\nhost = "0.0.0.0"\ninsecure_http = true\ndsn = "x"\n',
     "[hub] insecure_http: allowed only with a loopback host"),
    ('[hub]\ndsn = "x"\n', "[hub] tls_cert_file: required for HTTPS"),
    ('[hub]\ndsn = "x"\nport = "80"\ninsecure_http = true\nhost = "127.0.0.1"\n',
     "[hub] port: expected an integer 0-65535"),
    ('[hub]\ndsn = "x"\nportt = 1\n', "[hub] portt: unknown key"),
    ('[hub]\nhost = "127.0.0.1"\n', "[hub] dsn: required"),
])
def test_hub_config_errors_name_file_section_and_key(tmp_path: Path, text: str,
                                                     message: str) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_hub_config(path, env={})
    assert str(error.value).startswith(f"{path}: {message}")
