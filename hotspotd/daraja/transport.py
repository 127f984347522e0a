"""HTTP plumbing of the Daraja client: send with a timeout, map failures to typed errors."""

from __future__ import annotations

from typing import Any

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from .errors import (
    DarajaApiError,
    DarajaProtocolError,
    DarajaTimeout,
    DarajaUnreachable,
)


def send(session: requests.Session, method: str, url: str, *, timeout: float,
         **kwargs: Any) -> requests.Response:
    """One HTTP request; transport failures become DarajaUnreachable / DarajaTimeout."""
    try:
        return session.request(method, url, timeout=timeout, **kwargs)
    except (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError,
            requests.exceptions.InvalidURL) as exc:
        raise DarajaUnreachable(f"cannot reach {url}: {exc.__class__.__name__}") from exc
    except requests.exceptions.Timeout as exc:
        raise DarajaTimeout(f"no answer from {url} within {timeout} s") from exc
    except requests.exceptions.ConnectionError as exc:
        if _nothing_sent(exc):
            raise DarajaUnreachable(f"cannot connect to {url}") from exc
        raise DarajaTimeout(f"connection to {url} dropped before the answer") from exc
    except requests.exceptions.RequestException as exc:
        raise DarajaProtocolError(f"request to {url} failed: {exc.__class__.__name__}") from exc


def _nothing_sent(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection was never established (refused, DNS, no route)."""
    reason: object = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError | ConnectionRefusedError)


def json_object(response: requests.Response) -> dict[str, Any] | None:
    """The reply's JSON object, or None if the body is not a JSON object."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def error_from(response: requests.Response,
               body: dict[str, Any] | None) -> DarajaApiError | DarajaProtocolError:
    """Turn a non-success reply into DarajaApiError when it has Daraja's error shape."""
    if body is not None and body.get("errorCode") not in (None, ""):
        return DarajaApiError(response.status_code, str(body["errorCode"]),
                              str(body.get("errorMessage", "")),
                              str(body.get("requestId", "")))
    snippet = response.text[:120].replace("\n", " ")
    return DarajaProtocolError(f"HTTP {response.status_code} without a Daraja error body: "
                               f"{snippet!r}", http_status=response.status_code)


def require(body: dict[str, Any], *names: str) -> None:
    missing = [name for name in names if body.get(name) in (None, "")]
    if missing:
        raise DarajaProtocolError(f"Daraja reply lacks {', '.join(missing)}")
