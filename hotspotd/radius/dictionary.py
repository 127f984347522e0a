"""Load the RADIUS dictionary that ships in the `radius/` data directory."""

from __future__ import annotations

import functools

from pyrad.dictionary import Dictionary

from hotspotd.resources import data_dir


@functools.cache
def load_dictionary() -> Dictionary:
    """Return the project's dictionary (RFC attributes, MikroTik 14988, WISPr 14122).

    Dictionaries are read-only once parsed, so one instance is shared.
    """
    return Dictionary(str(data_dir("radius") / "dictionary"))
