"""Where the run-time data directories live.

`portal/`, `radius/` and `config/` sit at the top of the source tree; setup.cfg maps them
into the wheel as `hotspotd.data.portal`, `hotspotd.data.radius` and `hotspotd.data.config`.
An installed wheel finds them there; a source checkout (editable install, tests) finds
them beside the package.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parent
_SOURCE_ROOT = _PACKAGE_ROOT.parent
DATA_DIRS = ("portal", "radius", "config")


def data_dir(name: str) -> Path:
    """Return the directory holding the named run-time data (`portal`, `radius`, `config`)."""
    if name not in DATA_DIRS:
        raise ValueError(f"unknown data directory {name!r}")
    for path in (_PACKAGE_ROOT / "data" / name, _SOURCE_ROOT / name):
        if path.is_dir() and any(path.iterdir()):
            return path
    raise FileNotFoundError(f"hotspotd data directory {name!r} not found in {_PACKAGE_ROOT}")
