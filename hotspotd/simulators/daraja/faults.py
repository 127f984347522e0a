"""Fault injection for the Daraja simulator: lost, late and duplicate callbacks, spike
arrest, hanging pushes, invalidated tokens. Every setting can change while it runs."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Faults:
    """Thread-safe fault settings.

    - `drop_callbacks`: resolved prompts send no callback (STK Query still answers).
    - `callback_delay`: seconds to wait before sending each callback.
    - `duplicate_callbacks`: extra copies of every callback (2 -> delivered 3 times).
    - `spike_arrest_next`: the next N STK push/query calls answer 500.003.02.
    - `timeout_next`: the next N pushes are recorded (the prompt reaches the phone) but
      the answer is held for `hang_seconds`, longer than a client's timeout.
    - `invalidate_tokens()`: every token issued so far becomes invalid (404.001.03).
    """

    def __init__(self, on_invalidate_tokens: Callable[[], None] = lambda: None) -> None:
        self._lock = threading.Lock()
        self._on_invalidate_tokens = on_invalidate_tokens
        self._drop_callbacks = False
        self._callback_delay = 0.0
        self._duplicate_callbacks = 0
        self._spike_arrest_next = 0
        self._timeout_next = 0
        self._hang_seconds = 30.0

    def _get(self, name: str) -> object:
        with self._lock:
            return getattr(self, name)

    def _set(self, name: str, value: object) -> None:
        with self._lock:
            setattr(self, name, value)

    @property
    def drop_callbacks(self) -> bool:
        return bool(self._get("_drop_callbacks"))

    @drop_callbacks.setter
    def drop_callbacks(self, value: bool) -> None:
        self._set("_drop_callbacks", bool(value))

    @property
    def callback_delay(self) -> float:
        return float(self._get("_callback_delay"))  # type: ignore[arg-type]

    @callback_delay.setter
    def callback_delay(self, value: float) -> None:
        self._set("_callback_delay", max(0.0, float(value)))

    @property
    def duplicate_callbacks(self) -> int:
        return int(self._get("_duplicate_callbacks"))  # type: ignore[call-overload]

    @duplicate_callbacks.setter
    def duplicate_callbacks(self, value: int) -> None:
        self._set("_duplicate_callbacks", max(0, int(value)))

    @property
    def spike_arrest_next(self) -> int:
        return int(self._get("_spike_arrest_next"))  # type: ignore[call-overload]

    @spike_arrest_next.setter
    def spike_arrest_next(self, value: int) -> None:
        self._set("_spike_arrest_next", max(0, int(value)))

    @property
    def timeout_next(self) -> int:
        return int(self._get("_timeout_next"))  # type: ignore[call-overload]

    @timeout_next.setter
    def timeout_next(self, value: int) -> None:
        self._set("_timeout_next", max(0, int(value)))

    @property
    def hang_seconds(self) -> float:
        return float(self._get("_hang_seconds"))  # type: ignore[arg-type]

    @hang_seconds.setter
    def hang_seconds(self, value: float) -> None:
        self._set("_hang_seconds", max(0.0, float(value)))

    def invalidate_tokens(self) -> None:
        self._on_invalidate_tokens()

    def take_spike_arrest(self) -> bool:
        """Consume one pending spike-arrest answer, if any."""
        return self._take("_spike_arrest_next")

    def take_timeout(self) -> bool:
        """Consume one pending hanging push, if any."""
        return self._take("_timeout_next")

    def _take(self, name: str) -> bool:
        with self._lock:
            left = getattr(self, name)
            if left <= 0:
                return False
            setattr(self, name, left - 1)
            return True

    def as_dict(self) -> dict[str, object]:
        with self._lock:
            return {"drop_callbacks": self._drop_callbacks,
                    "callback_delay": self._callback_delay,
                    "duplicate_callbacks": self._duplicate_callbacks,
                    "spike_arrest_next": self._spike_arrest_next,
                    "timeout_next": self._timeout_next, "hang_seconds": self._hang_seconds}
