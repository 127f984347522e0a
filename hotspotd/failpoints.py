"""Crash-injection points, for proving that a crash at any instant loses nothing.

`HOTSPOTD_FAILPOINTS=payment.stored,callback.received` (read once at start) makes the
process exit abruptly (`os._exit`, no cleanup, like a power cut or SIGKILL) when it reaches
a named point. Unset, a failpoint is a set lookup. The names are listed in FAILPOINTS.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

FAILPOINTS = {
    "payment.stored": "after a payment row is committed, before its STK push is sent",
    "push.sent": "after Daraja accepted the STK push, before that is recorded",
    "callback.received": "after an STK callback is parsed, before it is applied",
    "grant.committed": "after a grant is committed, before the router is told",
}
EXIT_CODE = 86

_armed: frozenset[str] = frozenset()


def arm_from_environment(environ: dict[str, str] | None = None) -> frozenset[str]:
    """Read HOTSPOTD_FAILPOINTS; unknown names stop start-up."""
    global _armed
    value = (environ if environ is not None else os.environ).get("HOTSPOTD_FAILPOINTS", "")
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    unknown = names - FAILPOINTS.keys()
    if unknown:
        raise ValueError(f"HOTSPOTD_FAILPOINTS: unknown failpoint(s) {sorted(unknown)}")
    _armed = names
    if names:
        log.warning("failpoints armed: %s", ", ".join(sorted(names)))
    return names


def failpoint(name: str) -> None:
    """Exit the process here if this failpoint is armed."""
    if name in _armed:
        log.critical("failpoint %s reached: exiting abruptly", name)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(EXIT_CODE)
