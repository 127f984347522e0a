"""Typed errors of the Daraja client; callers decide what to do from the type.

- `DarajaUnreachable`: nothing reached Daraja (refused, DNS, TLS, connect timeout): safe to
  retry, even a push.
- `DarajaTimeout`: the request was sent but no answer came (read timeout, connection dropped
  mid-request). A push MAY have reached the phone: never resend it blindly, query it.
- `DarajaApiError`: Daraja answered with its error shape `{requestId, errorCode, errorMessage}`.
- `DarajaAuthError`: OAuth refused the consumer key/secret.
- `DarajaProtocolError`: an answer we cannot read (not JSON, fields missing, HTML from a proxy).
"""

from __future__ import annotations

INVALID_TOKEN_CODES = frozenset({"404.001.03", "400.003.01"})
INVALID_FIELD = "400.002.02"
SUBSCRIBER_BUSY = "500.001.1001"  # also "being processed" and "wrong credentials"
SPIKE_ARREST = "500.003.02"
QUOTA_VIOLATION = "500.003.03"
INTERNAL_ERROR = "500.003.1001"


class DarajaError(Exception):
    """Base of every error the Daraja client raises."""


class DarajaUnreachable(DarajaError):
    """Daraja could not be reached; nothing was sent, retrying is safe."""


class DarajaTimeout(DarajaError):
    """No answer in time after the request was sent; it may have been processed."""


class DarajaProtocolError(DarajaError):
    """Daraja (or something in between) answered with something we cannot interpret."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class DarajaApiError(DarajaError):
    """Daraja's own error answer."""

    def __init__(self, http_status: int, error_code: str, error_message: str,
                 request_id: str = "") -> None:
        super().__init__(f"Daraja error {error_code} (HTTP {http_status}): {error_message}")
        self.http_status = http_status
        self.error_code = error_code
        self.error_message = error_message
        self.request_id = request_id


class DarajaAuthError(DarajaError):
    """OAuth failed: wrong consumer key/secret, or the app lacks the product."""

    def __init__(self, message: str, *, http_status: int | None = None,
                 error_code: str = "", error_message: str = "") -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code
        self.error_message = error_message


def _code(err: BaseException) -> str:
    return err.error_code if isinstance(err, DarajaApiError) else ""


def is_invalid_token(err: BaseException) -> bool:
    return _code(err) in INVALID_TOKEN_CODES


def is_spike_arrest(err: BaseException) -> bool:
    """Too many requests: back off, then retry."""
    return _code(err) == SPIKE_ARREST


def is_quota(err: BaseException) -> bool:
    return _code(err) == QUOTA_VIOLATION


def is_invalid_field(err: BaseException) -> bool:
    return _code(err) == INVALID_FIELD


def is_subscriber_locked(err: BaseException) -> bool:
    """Another STK transaction is open on this phone: wait >= 1 minute before pushing again."""
    if _code(err) != SUBSCRIBER_BUSY:
        return False
    message = err.error_message.lower()  # type: ignore[union-attr]
    return "lock" in message or "already in process" in message


def is_still_processing(err: BaseException) -> bool:
    """STK Query's normal "not yet" answer (500.001.1001 "The transaction is being processed")."""
    if _code(err) != SUBSCRIBER_BUSY:
        return False
    message = err.error_message.lower()  # type: ignore[union-attr]
    return not message or "being processed" in message
