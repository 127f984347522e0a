"""RouterOS durations: `1w2d3h4m5s` as printed by the API, and the older `01:02:03`."""

from __future__ import annotations

import re

_UNITS = (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_UNIT_SECONDS = dict(_UNITS)
_PART = re.compile(r"(\d+)(ms|[wdhms])")
_CLOCK = re.compile(r"^(?:(\d+)d)?\s*(\d+):(\d{1,2}):(\d{1,2})(?:\.\d+)?$")


def format_duration(seconds: int) -> str:
    """Return `seconds` the way RouterOS prints it: `1w2d3h4m5s`, `45s`, `0s`."""
    if seconds < 0:
        raise ValueError(f"negative duration: {seconds}")
    parts = []
    remaining = int(seconds)
    for unit, size in _UNITS:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def parse_duration(text: str) -> int:
    """Return whole seconds of a RouterOS duration (`1w2d3h4m5s`, `45s`, `00:01:02`).

    Milliseconds (`500ms`) are dropped; an empty or malformed value raises ValueError.
    """
    value = text.strip()
    clock = _CLOCK.match(value)
    if clock:
        days, hours, minutes, secs = (int(group or 0) for group in clock.groups())
        return days * 86400 + hours * 3600 + minutes * 60 + secs
    if not value or _PART.sub("", value):
        raise ValueError(f"not a RouterOS duration: {text!r}")
    total = 0
    for count, unit in _PART.findall(value):
        if unit != "ms":
            total += int(count) * _UNIT_SECONDS[unit]
    return total
