"""The docs are tested: README commands, the simulator's number table, CLI commands."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from hotspotd.cli import build_parser
from hotspotd.simulators.daraja.state import auto_outcomes_markdown

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _block_after(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\n```sh\n(.*?)\n```", README, re.S)
    assert match, f"README has no code block after <!-- {marker} -->"
    return match.group(1)


def test_readme_opens_with_the_two_setup_commands() -> None:
    demo, tests = _block_after("demo-command"), _block_after("test-command")
    assert README.index("demo-command") < README.index("test-command") < README.index("\n## What")
    assert "pip install ." in demo and demo.endswith("hotspotd demo")
    assert "freeradius-utils" in tests and "pytest" in tests and "ruff check" in tests


def test_ci_runs_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    extracted = subprocess.run(
        ["bash", "-c", script.split("if [ -z")[0].split("export DEBIAN_FRONTEND=noninteractive")
         [1] + '\nprintf %s "$command"'], cwd=ROOT, capture_output=True, text=True, check=True)
    assert extracted.stdout == _block_after("test-command")


def test_readme_documents_the_simulator_numbers() -> None:
    assert auto_outcomes_markdown().strip() in README


def test_readme_mentions_every_cli_command() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name in commands:
        assert f"hotspotd {name}" in README, name
