"""Daraja HTTP client: OAuth, STK push (Lipa Na M-Pesa Online) and STK query.

Follows ../shared/reference/daraja.md. One cached token per credential set process-wide
(`tokens.shared_token_cache`); on an invalid-token answer the token is refetched once and
the call retried once. Every request has a timeout; failures are typed (`errors.py`).
Secrets (consumer secret, passkey, password, token) are never logged.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import requests

from .budget import RequestBudget
from .errors import (
    DarajaApiError,
    DarajaAuthError,
    DarajaError,
    DarajaProtocolError,
    is_invalid_token,
    is_quota,
    is_spike_arrest,
    is_still_processing,
)
from .msisdn import mask_msisdn, normalise_msisdn
from .result_codes import normalise_code
from .tokens import TokenCache, shared_token_cache
from .transport import error_from, json_object, require, send

log = logging.getLogger(__name__)

EAT = timezone(timedelta(hours=3), "EAT")
OAUTH_PATH = "/oauth/v1/generate?grant_type=client_credentials"
STK_PUSH_PATH = "/mpesa/stkpush/v1/processrequest"
STK_QUERY_PATH = "/mpesa/stkpushquery/v1/query"
C2B_REGISTER_PATH = "/mpesa/c2b/v1/registerurl"
C2B_SIMULATE_PATH = "/mpesa/c2b/v2/simulate"
PULL_REGISTER_PATH = "/pulltransactions/v1/register"
PULL_QUERY_PATH = "/pulltransactions/v1/query"
PULL_PAGE_ROWS = 100
TRANSACTION_TYPES = {"paybill": "CustomerPayBillOnline", "till": "CustomerBuyGoodsOnline"}
STILL_PROCESSING_RESULT = "4999"  # an STK Query ResultCode meaning "not yet" (reference)
ACCOUNT_REFERENCE_MAX = 12
TRANSACTION_DESC_MAX = 13


def eat_now() -> datetime:
    """The current time in Kenya (EAT, UTC+3, no daylight saving)."""
    return datetime.now(EAT)


def daraja_timestamp(moment: datetime) -> str:
    """`YYYYMMDDHHmmss` in EAT; a naive datetime is taken as EAT already."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(EAT)
    return moment.strftime("%Y%m%d%H%M%S")


def stk_password(shortcode: str, passkey: str, timestamp: str) -> str:
    """`base64(BusinessShortCode + Passkey + Timestamp)`."""
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode("ascii")


@dataclass(frozen=True)
class StkPushAccepted:
    merchant_request_id: str
    checkout_request_id: str
    response_description: str
    customer_message: str


@dataclass(frozen=True)
class StkQueryResult:
    pending: bool
    result_code: str | None  # normalised ("0", "1032"); None while pending
    result_desc: str
    merchant_request_id: str = ""
    checkout_request_id: str = ""


class DarajaClient:
    """Talks to one Daraja host (sandbox, production, or the embedded simulator)."""

    def __init__(self, *, base_url: str, consumer_key: str, consumer_secret: str,
                 shortcode: str, passkey: str, transaction_type: str = "paybill",
                 till_number: str = "", timeout: float = 10.0,
                 session: requests.Session | None = None, tokens: TokenCache | None = None,
                 now: Callable[[], datetime] = eat_now, budget: RequestBudget | None = None,
                 push_max_wait: float = 20.0, background_max_wait: float = 1.0) -> None:
        if transaction_type not in TRANSACTION_TYPES:
            raise ValueError(f"transaction_type must be 'paybill' or 'till', "
                             f"not {transaction_type!r}")
        if transaction_type == "till" and not till_number:
            raise ValueError("transaction_type 'till' needs a till_number")
        self.base_url = base_url.rstrip("/")
        self.shortcode = str(shortcode)
        self.transaction_type = transaction_type
        self.till_number = str(till_number)
        self.timeout = timeout
        self._consumer_key = consumer_key
        self._consumer_secret = consumer_secret
        self._passkey = passkey
        self._session = session or requests.Session()
        self._tokens = tokens or shared_token_cache(self.base_url, consumer_key)
        self._now = now
        self.budget = budget or RequestBudget(per_minute=1e9)
        self.push_max_wait = push_max_wait
        self.background_max_wait = background_max_wait

    def __repr__(self) -> str:
        return f"DarajaClient(base_url={self.base_url!r}, shortcode={self.shortcode!r})"

    # -- public API -------------------------------------------------------------------------

    def check_credentials(self) -> None:
        """Fetch a fresh token now; raises DarajaAuthError / DarajaUnreachable / ... ."""
        self._tokens.refresh(self._budgeted_fetch(self.push_max_wait))

    def stk_push(self, *, phone: str, amount: int, account_reference: str, description: str,
                 callback_url: str) -> StkPushAccepted:
        """Send the M-Pesa prompt. Raises InvalidPhoneNumber / ValueError before any HTTP.

        On DarajaTimeout the prompt may have reached the phone: query, do not resend.
        """
        msisdn = normalise_msisdn(phone)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ValueError(f"amount must be a positive whole number of shillings: {amount!r}")
        body = {
            **self._credentials(),
            "TransactionType": TRANSACTION_TYPES[self.transaction_type],
            "Amount": amount,
            "PartyA": msisdn,
            "PartyB": self.till_number if self.transaction_type == "till" else self.shortcode,
            "PhoneNumber": msisdn,
            "CallBackURL": callback_url,
            "AccountReference": account_reference[:ACCOUNT_REFERENCE_MAX],
            "TransactionDesc": description[:TRANSACTION_DESC_MAX],
        }
        log.info("STK push to %s, KES %s, account %s", mask_msisdn(msisdn), amount,
                 body["AccountReference"])
        reply = self._post_api(STK_PUSH_PATH, body, max_wait=self.push_max_wait)
        response_code = str(reply.get("ResponseCode", "")).strip()
        if response_code != "0":
            raise DarajaApiError(200, response_code or "?",
                                 str(reply.get("ResponseDescription", "")),
                                 str(reply.get("MerchantRequestID", "")))
        require(reply, "MerchantRequestID", "CheckoutRequestID")
        accepted = StkPushAccepted(
            merchant_request_id=str(reply["MerchantRequestID"]),
            checkout_request_id=str(reply["CheckoutRequestID"]),
            response_description=str(reply.get("ResponseDescription", "")),
            customer_message=str(reply.get("CustomerMessage", "")),
        )
        log.info("STK push accepted: %s", accepted.checkout_request_id)
        return accepted

    def stk_query(self, checkout_request_id: str, *,
                  max_wait: float | None = None) -> StkQueryResult:
        """Ask how a push ended; `pending=True` while the customer has not answered.

        `max_wait`: how long to wait for a budget slot (default: the background wait; a
        customer waiting on a callback's confirmation gets the push's)."""
        body = {**self._credentials(), "CheckoutRequestID": checkout_request_id}
        try:
            reply = self._post_api(STK_QUERY_PATH, body, max_wait=max_wait, settles=True)
        except DarajaApiError as err:
            if is_still_processing(err):
                return StkQueryResult(pending=True, result_code=None,
                                      result_desc=err.error_message,
                                      checkout_request_id=checkout_request_id)
            raise
        return _query_result(checkout_request_id, reply)

    def register_c2b_urls(self, *, confirmation_url: str, validation_url: str,
                          response_type: str = "Completed") -> dict[str, Any]:
        """Register the C2B confirmation/validation URLs; returns Daraja's answer."""
        if response_type not in ("Completed", "Cancelled"):
            raise ValueError("response_type must be 'Completed' or 'Cancelled'")
        body = {"ShortCode": self.shortcode, "ResponseType": response_type,
                "ConfirmationURL": confirmation_url, "ValidationURL": validation_url}
        return self._post_api(C2B_REGISTER_PATH, body, max_wait=self.push_max_wait)

    def simulate_c2b(self, *, amount: int, msisdn: str, bill_ref: str) -> dict[str, Any]:
        """Sandbox only: make a customer pay the paybill from the M-Pesa menu."""
        body = {"ShortCode": self.shortcode, "CommandID": "CustomerPayBillOnline",
                "Amount": amount, "Msisdn": normalise_msisdn(msisdn), "BillRefNumber": bill_ref}
        return self._post_api(C2B_SIMULATE_PATH, body, max_wait=self.push_max_wait)

    def pull_register(self, *, nominated_number: str, callback_url: str) -> dict[str, Any]:
        """Register for Pull Transactions (ResponseStatus 1000 registered, 1001 already)."""
        body = {"ShortCode": self.shortcode, "RequestType": "Pull",
                "NominatedNumber": nominated_number, "CallBackURL": callback_url}
        return self._post_api(PULL_REGISTER_PATH, body, max_wait=self.background_max_wait,
                              settles=True)

    def pull_query(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Every C2B transaction between `start` and `end` (EAT), all pages."""
        rows: list[dict[str, Any]] = []
        while True:
            body = {"ShortCode": self.shortcode,
                    "StartDate": start.astimezone(EAT).strftime("%Y-%m-%d %H:%M:%S"),
                    "EndDate": end.astimezone(EAT).strftime("%Y-%m-%d %H:%M:%S"),
                    "OffSetValue": str(len(rows))}
            page = pull_rows(self._post_api(PULL_QUERY_PATH, body, settles=True,
                                            max_wait=self.background_max_wait))
            rows.extend(page)
            if len(page) < PULL_PAGE_ROWS:
                return rows

    # -- internals --------------------------------------------------------------------------

    def _credentials(self) -> dict[str, str]:
        timestamp = daraja_timestamp(self._now())
        return {
            "BusinessShortCode": self.shortcode,
            "Password": stk_password(self.shortcode, self._passkey, timestamp),
            "Timestamp": timestamp,
        }

    def _post_api(self, path: str, body: dict[str, Any], *, max_wait: float | None = None,
                  settles: bool = False) -> dict[str, Any]:
        """POST with the cached token; refetch the token and retry once if Daraja rejects it.

        Every request (the token fetch included) takes a slot of the shared budget first;
        `settles`: the request settles money (STK Query, Pull) and waits in the budget's
        settlement line, served before new work (see `daraja.budget`).
        """
        wait = self.background_max_wait if max_wait is None else max_wait
        fetch = self._budgeted_fetch(wait, settles)
        token = self._tokens.get(fetch)
        try:
            return self._post_once(path, body, token, wait, settles)
        except DarajaApiError as err:
            if not is_invalid_token(err):
                raise
            log.info("Daraja rejected the access token (%s); fetching a new one", err.error_code)
            self._tokens.invalidate(token)
        return self._post_once(path, body, self._tokens.get(fetch), wait, settles)

    def _budgeted_fetch(self, max_wait: float,
                        settles: bool = False) -> Callable[[], tuple[str, float]]:
        def fetch() -> tuple[str, float]:
            self.budget.acquire(max_wait, priority=settles)
            return self._fetch_token()
        return fetch

    def _post_once(self, path: str, body: dict[str, Any], token: str, max_wait: float,
                   settles: bool = False) -> dict[str, Any]:
        self.budget.acquire(max_wait, priority=settles)
        response = send(self._session, "POST", self.base_url + path, timeout=self.timeout,
                        json=body, headers={"Authorization": f"Bearer {token}"})
        reply = json_object(response)
        if response.status_code != 200:
            error = error_from(response, reply)
            if is_spike_arrest(error) or is_quota(error):
                self.budget.back_off(getattr(error, "error_code", ""))
            raise error
        self.budget.succeeded()
        if reply is None:
            raise DarajaProtocolError(f"{path} answered 200 without a JSON object",
                                      http_status=200)
        return reply

    def _fetch_token(self) -> tuple[str, float]:
        response = send(self._session, "GET", self.base_url + OAUTH_PATH, timeout=self.timeout,
                        auth=(self._consumer_key, self._consumer_secret))
        reply = json_object(response)
        if response.status_code != 200:
            raise _oauth_error(response, reply)
        if reply is None or not reply.get("access_token"):
            raise DarajaProtocolError("OAuth reply lacks access_token",
                                      http_status=response.status_code)
        try:
            expires_in = float(str(reply.get("expires_in", "")).strip())
        except ValueError as exc:
            raise DarajaProtocolError(f"OAuth expires_in unreadable: "
                                      f"{reply.get('expires_in')!r}") from exc
        log.debug("fetched a Daraja access token valid for %s s", expires_in)
        return str(reply["access_token"]), expires_in


def client_for(template: DarajaClient, *, base_url: str, consumer_key: str,
               consumer_secret: str, shortcode: str, passkey: str, transaction_type: str,
               till_number: str = "") -> DarajaClient:
    """A client for another credential set (a Daraja channel) sharing the template's request
    budget, timeout and waits: the appliance's Daraja traffic stays under one budget."""
    return DarajaClient(base_url=base_url, consumer_key=consumer_key,
                        consumer_secret=consumer_secret, shortcode=shortcode, passkey=passkey,
                        transaction_type=transaction_type, till_number=till_number,
                        timeout=template.timeout, budget=template.budget,
                        push_max_wait=template.push_max_wait,
                        background_max_wait=template.background_max_wait)


def _oauth_error(response: requests.Response,
                 reply: dict[str, Any] | None) -> DarajaError:
    """4xx from OAuth means the credentials are refused; 5xx is Daraja's problem."""
    error = error_from(response, reply)
    if response.status_code >= 500:
        return error
    code = getattr(error, "error_code", "")
    message = getattr(error, "error_message", "")
    detail = f": {code} {message}" if code else ""
    return DarajaAuthError(f"Daraja refused the consumer key/secret (HTTP "
                           f"{response.status_code}){detail}", http_status=response.status_code,
                           error_code=code, error_message=message)


def _query_result(checkout_request_id: str, reply: dict[str, Any]) -> StkQueryResult:
    """A 200 STK Query answer, about the request asked: a reply naming another
    CheckoutRequestID (a test double does) does not change which payment it is about.
    `STILL_PROCESSING_RESULT` (4999) is "not yet", like the 500.001.1001 answer."""
    if reply.get("ResultCode") in (None, ""):
        raise DarajaProtocolError("STK query reply lacks ResultCode")
    try:
        code = normalise_code(reply["ResultCode"])
    except ValueError as exc:
        raise DarajaProtocolError(f"unreadable ResultCode {reply['ResultCode']!r}") from exc
    named = str(reply.get("CheckoutRequestID") or checkout_request_id)
    if named != checkout_request_id:
        log.warning("STK query for %s answered naming %s; taken as the answer asked for",
                    checkout_request_id, named)
    log.info("STK query %s: result %s", checkout_request_id, code)
    return StkQueryResult(
        pending=code == STILL_PROCESSING_RESULT,
        result_code=None if code == STILL_PROCESSING_RESULT else code,
        result_desc=str(reply.get("ResultDesc", "")),
        merchant_request_id=str(reply.get("MerchantRequestID", "")),
        checkout_request_id=checkout_request_id,
    )


def pull_rows(reply: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a Pull query answer: `Response` is a list of rows, or a list of lists."""
    if str(reply.get("ResponseCode", "")).strip() == "1001":
        return []
    response = reply.get("Response")
    if not isinstance(response, list):
        raise DarajaProtocolError("Pull query reply lacks Response rows")
    rows: list[dict[str, Any]] = []
    for entry in response:
        for row in entry if isinstance(entry, list) else [entry]:
            if isinstance(row, dict):
                rows.append(row)
    return rows
