"""Fault injection for the Daraja simulator, switchable while it runs (also over HTTP:
`GET/POST /simulator/faults`, see control.py).

- `drop_callbacks`: resolved prompts send no callback (STK Query still answers).
- `callback_delay`: seconds to wait before sending each callback.
- `duplicate_callbacks`: extra copies of every callback (2 -> delivered 3 times).
- `drop_probability`, `duplicate_probability`, `delay_max`: the same per callback, at
  random (a random delay up to `delay_max`).
- `spike_arrest_next` / `quota_next`: the next N API calls answer 500.003.02 / 500.003.03;
  `spike_arrest_probability`: any API call does so at random.
- `timeout_next`: the next N pushes are recorded (the prompt reaches the phone) but the
  answer is held for `hang_seconds`, longer than a client's timeout.
- `c2b_for_stk`: a successful STK payment is also confirmed through the registered C2B
  confirmation URL (a paybill with registered URLs sees both).
- `token_lifetime`: tokens die this many seconds after issue although `expires_in` says
  3599 (0: off). `invalidate_tokens()` kills every token issued so far (404.001.03).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any


def _count(value: Any) -> int:
    return max(0, int(value))


def _seconds(value: Any) -> float:
    return max(0.0, float(value))


def _probability(value: Any) -> float:
    return min(1.0, max(0.0, float(value)))


FIELDS: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "drop_callbacks": (bool, False),
    "callback_delay": (_seconds, 0.0),
    "duplicate_callbacks": (_count, 0),
    "drop_probability": (_probability, 0.0),
    "duplicate_probability": (_probability, 0.0),
    "delay_max": (_seconds, 0.0),
    "spike_arrest_next": (_count, 0),
    "quota_next": (_count, 0),
    "spike_arrest_probability": (_probability, 0.0),
    "timeout_next": (_count, 0),
    "hang_seconds": (_seconds, 30.0),
    "c2b_for_stk": (bool, False),
    "token_lifetime": (_seconds, 0.0),
}


class Faults:
    """Thread-safe fault settings; read and set them as attributes or with `update()`."""

    def __init__(self, on_invalidate_tokens: Callable[[], None] = lambda: None) -> None:
        object.__setattr__(self, "_lock", threading.Lock())
        object.__setattr__(self, "_values", {name: default
                                             for name, (_, default) in FIELDS.items()})
        object.__setattr__(self, "_on_invalidate_tokens", on_invalidate_tokens)
        object.__setattr__(self, "_rng", random.Random())

    def __getattr__(self, name: str) -> Any:
        if name not in FIELDS:
            raise AttributeError(name)
        with self._lock:
            return self._values[name]

    def __setattr__(self, name: str, value: Any) -> None:
        self.update(**{name: value})

    def update(self, **values: Any) -> dict[str, Any]:
        """Set several faults at once; unknown names or bad values raise ValueError."""
        unknown = sorted(set(values) - FIELDS.keys())
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(unknown)}")
        try:
            converted = {name: FIELDS[name][0](value) for name, value in values.items()}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad fault value: {exc}") from None
        with self._lock:
            self._values.update(converted)
        return self.as_dict()

    def reset(self) -> None:
        with self._lock:
            self._values.update({name: default for name, (_, default) in FIELDS.items()})

    def invalidate_tokens(self) -> None:
        self._on_invalidate_tokens()

    def take_spike_arrest(self) -> bool:
        return self._take("spike_arrest_next") or self.chance("spike_arrest_probability")

    def take_quota(self) -> bool:
        return self._take("quota_next")

    def take_timeout(self) -> bool:
        return self._take("timeout_next")

    def chance(self, name: str) -> bool:
        with self._lock:
            return self._rng.random() < self._values[name]

    def callback_plan(self) -> tuple[bool, int, float]:
        """For one callback: (drop it?, copies to send, delay before sending)."""
        with self._lock:
            values, rng = self._values, self._rng
            drop = values["drop_callbacks"] or rng.random() < values["drop_probability"]
            copies = 1 + values["duplicate_callbacks"] + (
                1 if rng.random() < values["duplicate_probability"] else 0)
            delay = values["callback_delay"] + rng.uniform(0, values["delay_max"])
        return drop, copies, delay

    def _take(self, name: str) -> bool:
        with self._lock:
            if self._values[name] <= 0:
                return False
            self._values[name] -= 1
            return True

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._values)
