"""Thin wrappers that time and count calls into the RADIUS policy and the Daraja client.

They are applied by the wiring code (`hotspotd.app`), so the wrapped modules stay unaware
of metrics. The metrics live in the appliance's own registry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram

T = TypeVar("T")

RADIUS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Instruments:
    """The metrics recorded by wrapping; one set per appliance."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.radius_latency = Histogram(
            "hotspotd_radius_decision_seconds",
            "Time to decide an Access-Request or record an accounting packet.",
            ["kind"], buckets=RADIUS_BUCKETS, registry=registry)
        self.daraja_requests = Counter(
            "hotspotd_daraja_requests", "Calls to the Daraja API, by operation.",
            ["operation"], registry=registry)
        self.daraja_errors = Counter(
            "hotspotd_daraja_errors", "Failed Daraja calls, by operation and error kind.",
            ["operation", "kind"], registry=registry)
        self.coa_outcomes = Counter(
            "hotspotd_coa", "CoA-Request / Disconnect-Request outcomes sent to the router.",
            ["request", "outcome"], registry=registry)

    def coa(self, client: T) -> T:
        """`client` (a CoaClient), with each change/disconnect counted by its outcome."""
        return _CoaProxy(client, self.coa_outcomes)  # type: ignore[return-value]

    def timed(self, kind: str, function: Callable[..., T]) -> Callable[..., T]:
        histogram = self.radius_latency.labels(kind)

        def timed_call(*args: Any, **kwargs: Any) -> T:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                histogram.observe(time.perf_counter() - started)

        return timed_call

    def daraja(self, client: T) -> T:
        """`client`, with every public method call counted (and its errors by type)."""
        return _CountingProxy(client, self)  # type: ignore[return-value]


class _CountingProxy:
    def __init__(self, target: Any, instruments: Instruments) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_instruments", instruments)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name.startswith("_") or not callable(value):
            return value
        instruments = self._instruments

        def counted(*args: Any, **kwargs: Any) -> Any:
            instruments.daraja_requests.labels(name).inc()
            try:
                return value(*args, **kwargs)
            except Exception as exc:
                instruments.daraja_errors.labels(name, type(exc).__name__).inc()
                raise

        return counted

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __repr__(self) -> str:
        return repr(self._target)


class _CoaProxy:
    _REQUESTS = {"change": "coa", "disconnect": "disconnect"}

    def __init__(self, target: Any, counter: Counter) -> None:
        self._target = target
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name not in self._REQUESTS:
            return value
        counter, request = self._counter, self._REQUESTS[name]

        def counted(*args: Any, **kwargs: Any) -> Any:
            try:
                outcome = value(*args, **kwargs)
            except Exception:
                counter.labels(request, "error").inc()
                raise
            label = ("ack" if outcome.acked else "nak") if outcome.answered else "no_answer"
            counter.labels(request, label).inc()
            return outcome

        return counted
