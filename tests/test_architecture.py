"""The house above file level: packages import in one direction, and none grows past a size a
newcomer can read. The layers are the `[importlinter]` contract in setup.cfg."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULES = 16


def test_packages_import_in_one_direction() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is in the test extras: pip install -e '.[test]'"
    done = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def test_no_package_holds_more_than_sixteen_modules() -> None:
    sizes = {package.relative_to(ROOT).as_posix(): len(list(package.glob("*.py")))
             for package in (ROOT / "hotspotd").rglob("*") if (package / "__init__.py").is_file()}
    assert sizes["hotspotd/ledger"] > 1  # the walk found the packages
    too_big = {name: count for name, count in sizes.items() if count > MAX_MODULES + 1}
    assert not too_big, f"split these (counting __init__.py): {too_big}"


LEDGER_TABLES = ("payments", "grants", "entitlements", "vouchers", "plans", "recoveries",
                 "unmatched_payments", "router_ops", "events", "devices", "account_codes")
WRITE = re.compile(r"\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+"
                   rf"({'|'.join(LEDGER_TABLES)})\b", re.IGNORECASE)


def _sql_strings(path: Path) -> list[str]:
    """Every string literal in a module (implicitly concatenated ones come whole), and the
    literal parts of f-strings joined."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            found.append("".join(part.value if isinstance(part, ast.Constant) else " x "
                                 for part in node.values))
    return found


def test_only_the_ledger_writes_the_ledger_tables() -> None:
    """Everyone else calls the ledger (hotspotd/ledger/) to change its tables. The hub keeps
    projections of the same names in PostgreSQL, its own."""
    writers: dict[str, set[str]] = {}
    for path in (ROOT / "hotspotd").rglob("*.py"):
        where = path.relative_to(ROOT).as_posix()
        for text in _sql_strings(path):
            for table in WRITE.findall(text):
                writers.setdefault(table, set()).add(where)
    assert "hotspotd/ledger/payments.py" in writers["payments"]  # the scan sees writes
    outside = {table: sorted(w for w in where if not w.startswith(("hotspotd/ledger/",
                                                                  "hotspotd/hub/")))
               for table, where in writers.items()}
    assert not any(outside.values()), outside
