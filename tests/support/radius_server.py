"""A RadiusServer on 127.0.0.1, ports 0, with a recording test backend."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from hotspotd.radius.server import (
    AccessDecision,
    AccessRequest,
    AccountingRecord,
    RadiusServer,
)

SECRET = b"s3cret-shared"
MAC = "AA:BB:CC:DD:EE:FF"
PASSWORD = "paid-in-full"
RATE_LIMIT = "2M/5M"
SESSION_TIMEOUT = 3600
IDLE_TIMEOUT = 300
REJECT_MESSAGE = "Not paid: open the portal to buy time"


@dataclass
class Backend:
    """Stands in for billing: one paid device, and switches to make the callbacks fail."""

    users: dict[str, str] = field(default_factory=lambda: {MAC: PASSWORD})
    requests: list[AccessRequest] = field(default_factory=list)
    records: list[AccountingRecord] = field(default_factory=list)
    authorize_error: Exception | None = None
    accounting_error: Exception | None = None

    def authorize(self, request: AccessRequest) -> AccessDecision:
        self.requests.append(request)
        if self.authorize_error is not None:
            raise self.authorize_error
        password = self.users.get(request.user_name)
        if password is None or not request.password_matches(password):
            return AccessDecision(accept=False, reply_message=REJECT_MESSAGE)
        return AccessDecision(
            accept=True,
            session_timeout=SESSION_TIMEOUT,
            rate_limit=RATE_LIMIT,
            idle_timeout=IDLE_TIMEOUT,
        )

    def record_accounting(self, record: AccountingRecord) -> None:
        if self.accounting_error is not None:
            raise self.accounting_error
        self.records.append(record)


@contextlib.contextmanager
def started_server(
    backend: Backend, *, clients: dict[str, bytes] | None = None, **options: object
) -> Iterator[RadiusServer]:
    """Run a server for the duration of the block; `options` go to RadiusServer."""
    server = RadiusServer(
        host="127.0.0.1",
        auth_port=0,
        acct_port=0,
        clients={"127.0.0.1": SECRET} if clients is None else clients,
        authorize=backend.authorize,
        record_accounting=backend.record_accounting,
        **options,  # type: ignore[arg-type]
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
