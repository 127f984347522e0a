"""Where the run-time data directories live.

`portal/`, `radius/` and `config/` sit at the top of the source tree; setup.cfg maps them
into the wheel as `hotspotd.data.portal`, `hotspotd.data.radius` and `hotspotd.data.config`.
An installed wheel finds them there; a source checkout (editable install, tests) finds
them beside the package.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parent.parent
DATA_DIRS = ("portal", "radius", "config")


def data_dir(name: str) -> Path:
    """Return the directory holding the named run-time data (`portal`, `radius`, `config`)."""
    if name not in DATA_DIRS:
        raise ValueError(f"unknown data directory {name!r}")
    try:
        found = importlib.resources.files(f"hotspotd.data.{name}")
        path = Path(str(found))
        if path.is_dir():
            return path
    except ModuleNotFoundError:
        pass
    path = _SOURCE_ROOT / name
    if not path.is_dir():
        raise FileNotFoundError(f"hotspotd data directory {name!r} not found at {path}")
    return path
