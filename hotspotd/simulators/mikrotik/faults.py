"""Faults the MikroTik simulator can show, switchable at run time (tests, chaos, demo).

Each is a probability in [0, 1] drawn per command or packet from one seeded generator, so a
chaos run can be replayed: `api_timeout` (the command is never answered), `api_trap`
(`!trap` "simulated failure"), `silent_write` (a write answers `!done` and is not applied,
as field reports describe) and `drop_coa` (a CoA / Disconnect request is ignored).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

WRITE_COMMANDS = frozenset({"/ip/hotspot/active/login", "/ip/hotspot/active/remove"})


@dataclass
class Faults:
    api_timeout: float = 0.0
    api_trap: float = 0.0
    silent_write: float = 0.0
    drop_coa: float = 0.0
    seed: int | None = None
    _random: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def set(self, **probabilities: float) -> None:
        """Change some probabilities at once, e.g. `faults.set(drop_coa=1.0)`."""
        for name, value in probabilities.items():
            if name not in ("api_timeout", "api_trap", "silent_write", "drop_coa"):
                raise ValueError(f"unknown fault {name!r}")
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fault {name} must be a probability, got {value!r}")
            setattr(self, name, float(value))

    def seed_with(self, seed: int) -> None:
        """Restart the random draws from `seed` (to replay a chaos run)."""
        with self._lock:
            self._random.seed(seed)

    def clear(self) -> None:
        self.set(api_timeout=0.0, api_trap=0.0, silent_write=0.0, drop_coa=0.0)

    def hit(self, name: str) -> bool:
        """Draw once: True when the fault `name` happens this time."""
        probability = getattr(self, name)
        if probability <= 0.0:
            return False
        with self._lock:
            return self._random.random() < probability
