"""`pip install .` into a fresh venv, then `hotspotd` from another directory must work:
everything the daemon needs at run time (portal, RADIUS dictionaries, configs, SQL
migrations) ships inside the wheel.
"""

from __future__ import annotations

import configparser
import json
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_in_setup_cfg() -> None:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    listed = set(parser["options"]["packages"].split())
    on_disk = {".".join(path.parent.relative_to(ROOT).parts)
               for path in (ROOT / "hotspotd").rglob("__init__.py")}
    assert on_disk <= listed, f"missing from setup.cfg packages: {sorted(on_disk - listed)}"


# Module scope, on purpose: building the wheel takes seconds; the tests only read it or
# install it into a virtualenv of their own.
@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True, capture_output=True)
    return next(out.glob("hotspotd-*.whl"))


def test_wheel_carries_run_time_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("hotspotd/data/portal/templates/portal.html",
                   "hotspotd/data/radius/dictionary", "hotspotd/data/radius/dictionary.mikrotik",
                   "hotspotd/data/config/demo.toml", "hotspotd/data/config/hotspotd.example.toml",
                   "hotspotd/store/sql/0001_initial.sql"):
        assert needed in names


def test_fresh_venv_install_runs_demo_from_anywhere(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)],
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    hotspotd = venv / "bin" / "hotspotd"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    helped = subprocess.run([str(hotspotd), "--help"], cwd=elsewhere, capture_output=True,
                            text=True, check=True)
    assert "demo" in helped.stdout and "run" in helped.stdout

    data_dir = tmp_path / "data"
    process = subprocess.Popen([str(hotspotd), "demo", "--data-dir", str(data_dir)],
                               cwd=elsewhere, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not (data_dir / "demo.json").exists():
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, "demo.json never appeared"
            time.sleep(0.1)
        info = json.loads((data_dir / "demo.json").read_text())
        plans = requests.get(info["portal_url"] + "api/plans", timeout=5).json()
        assert len(plans) >= 1
        page = requests.get(info["portal_url"], timeout=5)
        assert page.status_code == 200 and plans[0]["name"] in page.text
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
