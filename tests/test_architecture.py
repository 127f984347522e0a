"""The house above file level: packages import in one direction, and none grows past a size a
newcomer can read. The layers are the `[importlinter]` contract in setup.cfg."""

from __future__ import annotations

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
