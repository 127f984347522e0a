"""The docs are tested: README commands, the simulator's number table, CLI commands."""

from __future__ import annotations

import importlib
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


def test_every_command_line_in_the_docs_parses() -> None:
    """Each `hotspotd ...` line of a shell block in the README and docs/ (the operator's
    hub set-up included) is accepted by the real parser: subcommand, options and values."""
    import shlex

    parser, lines = build_parser(), []
    for doc in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))):
        for block in re.findall(r"```sh\n(.*?)```", doc.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                for part in re.split(r"&&|\|\||;|\|", line.split(" #")[0]):
                    found = re.match(r"\s*(?:sudo\s+(?:-u\s+\S+\s+)?)?(?:\S*/)?hotspotd\s+(.*)",
                                     part)
                    if found and "..." not in part and "<" not in part:
                        lines.append((doc.name, "hotspotd " + found.group(1).strip()))
    assert any("hub enroll" in command for _, command in lines)  # the operator's set-up
    for doc, command in lines:
        words = [w for w in shlex.split(command)[1:] if not re.fullmatch(r"\[.*\]", w)]
        try:
            parser.parse_args(words)
        except SystemExit:
            raise AssertionError(f"{doc}: {command!r} does not parse") from None


# Docs that stay true: every repository path and module the docs name exists.
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = "hotspotd|bench|tests|config|portal|systemd|docs|radius|\\.ci"
# A path starts at a top-level directory, not inside /etc/..., a URL or <venv>/share/....
REPO_PATH = re.compile(rf"(?<![\w/.<>-])(?:{TOP})/[\w./<>*-]*")
# `hotspotd.x.y`, or `x.y.z` relative to the package when x is one of its modules.
DOTTED = re.compile(r"(?<![\w/.-])([a-z_]\w*(?:\.[a-zA-Z_]\w*)+)(?![\w/-])")
BARE_PY = re.compile(r"`([\w-]+\.py)`")
PLACEHOLDER = re.compile(r"<[^>]*>|NNNN_name|NNNN|\*")
NOT_REPO = {".venv", "build", "node_modules", ".git"}


def _repo_files() -> list[Path]:
    return [p for p in ROOT.rglob("*") if not NOT_REPO & set(p.relative_to(ROOT).parts)]


def _path_exists(path: str) -> bool:
    path = path.rstrip(".,:;")
    if PLACEHOLDER.search(path):
        return any(ROOT.glob(PLACEHOLDER.sub("*", path)))
    return (ROOT / path).exists()


def _module_exists(name: str) -> bool:
    parts = name.split(".")
    if parts[0] != "hotspotd":
        parts = ["hotspotd", *parts]
    for cut in range(len(parts), 1, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def _names_a_module(name: str, files: set[str]) -> bool:
    """`hotspotd.x`, or `x.y` where x is a hotspotd module; not a file name (hotspotd.service)."""
    if name in files:
        return False
    head = name.split(".")[0]
    return head == "hotspotd" or (ROOT / "hotspotd" / head).is_dir() or (
        ROOT / "hotspotd" / f"{head}.py").is_file()


def test_every_path_and_module_the_docs_name_exists() -> None:
    files = {p.name for p in _repo_files()}
    missing = []
    for doc in DOCS:
        text = doc.read_text()
        assert "../" not in text, f"{doc.name} points outside the repository"
        for path in REPO_PATH.findall(text):
            if not _path_exists(path):
                missing.append(f"{doc.name}: {path}")
        for name in BARE_PY.findall(text):
            if name not in files:
                missing.append(f"{doc.name}: {name}")
        for span in re.findall(r"`([^`\n]+)`", text):
            for name in DOTTED.findall(span):
                if _names_a_module(name, files) and not _module_exists(name):
                    missing.append(f"{doc.name}: {name}")
    assert not missing, missing
