"""`DarajaSimulator`: Safaricom's Daraja sandbox in-process, for `hotspotd demo` and tests.

Follows ../shared/reference/daraja.md: OAuth (one valid token per credential set, string
`expires_in`), STK push and query with Daraja's validation and error shapes, callbacks to
CallBackURL, a phone page, automatic answers (`AUTO_OUTCOMES`) and fault injection.
Several accounts (`add_account`: a second paybill or till with its own keys) can be served
at once; each token works only for its own account's shortcode and prompts.

OAuth choices: a missing or non-Basic Authorization header and a wrong consumer key/secret
both answer HTTP 400 `400.008.01` "Invalid Authentication passed"; a grant_type other than
client_credentials answers HTTP 400 `400.008.02` "Invalid grant type passed". A missing,
unknown, replaced or expired Bearer token answers HTTP 404 `404.001.03` "Invalid Access Token".
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import threading
from collections import Counter
from datetime import datetime
from typing import Any

from flask import Flask

from hotspotd.httpserver import ServedApp

from .accounts import Account, Accounts
from .app import create_app
from .c2b import C2BTransaction
from .callbacks import callback_body, deliver
from .faults import Faults
from .scheduler import Scheduler
from .state import (
    PENDING,
    SANDBOX_TEST_MSISDN,
    PromptBook,
    PromptNotPending,
    SubscriberLocked,
    UnknownPrompt,
    auto_outcome,
)
from .validation import (
    EAT,
    INVALID_TOKEN,
    MERCHANT_ERROR,
    QUOTA,
    SPIKE_ARREST,
    WRONG_AUTH_TYPE,
    WRONG_GRANT_TYPE,
    ApiError,
    invalid,
    parse_push,
    parse_query,
)

log = logging.getLogger(__name__)

ACCEPTED = "Success. Request accepted for processing"
QUERY_ACCEPTED = "The service request has been accepted successsfully"  # Safaricom's typo
LOCKED = ("Unable to lock subscriber, a transaction is already in process for the current "
          "subscriber")


class DarajaSimulator:
    def __init__(self, *, consumer_key: str, consumer_secret: str, shortcode: str = "174379",
                 passkey: str, till_number: str = "", token_ttl: int = 3599,
                 approve_delay: float = 2.0, auto_resolve_delay: float = 1.0) -> None:
        self.approve_delay = approve_delay
        self.auto_resolve_delay = auto_resolve_delay
        self._token_ttl = token_ttl
        self._accounts = Accounts()
        default = self._accounts.add(consumer_key=consumer_key, consumer_secret=consumer_secret,
                                     shortcode=shortcode, passkey=passkey,
                                     till_number=till_number, token_ttl=token_ttl)
        self.faults = Faults(self._accounts.invalidate_all)
        self._book = PromptBook()
        self.c2b = default.c2b  # the default account's C2B book
        self._scheduler = Scheduler()
        self._stopping = threading.Event()
        self._counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self._served: ServedApp | None = None
        self._app = create_app(self)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._served = ServedApp(self._app, host, port, name="daraja-simulator").start()

    def stop(self) -> None:
        self._stopping.set()
        self._scheduler.stop()
        if self._served is not None:
            self._served.stop()

    @property
    def url(self) -> str:
        if self._served is None:
            raise RuntimeError("the Daraja simulator is not started")
        return self._served.url

    @property
    def phone_url(self) -> str:
        return self.url + "/phone"

    def app(self) -> Flask:
        return self._app

    # -- inspection and control ------------------------------------------------------------

    def has_account(self, consumer_key: str) -> bool:
        return any(a.consumer_key == consumer_key for a in self._accounts.all())

    def add_account(self, *, consumer_key: str, consumer_secret: str, shortcode: str,
                    passkey: str, till_number: str = "") -> None:
        """Another Daraja credential set (a second paybill or till, its own app keys): its
        tokens work only with its own shortcode and prompts. ValueError if the consumer key
        is taken."""
        self._accounts.add(consumer_key=consumer_key, consumer_secret=consumer_secret,
                           shortcode=shortcode, passkey=passkey, till_number=till_number,
                           token_ttl=self._token_ttl)

    def prompts(self) -> list[dict[str, Any]]:
        """Every STK push received so far and how it stands, oldest first."""
        return self._book.snapshot()

    def stats(self) -> dict[str, int]:
        """Requests received per endpoint: `oauth`, `stkpush`, `stkquery`, and any of
        `c2b_register`, `c2b_simulate`, `pull_register`, `pull_query` used."""
        with self._counts_lock:
            counts = {name: self._counts[name] for name in ("oauth", "stkpush", "stkquery")}
            return counts | {name: n for name, n in self._counts.items() if n}

    def resolve(self, checkout_request_id: str, outcome: str) -> None:
        """Answer a prompt as the customer would (see state.OUTCOMES) and send the callback.
        Raises UnknownPrompt, PromptNotPending, or ValueError for an unknown outcome."""
        prompt = self._book.finish(checkout_request_id, outcome, datetime.now(EAT))
        log.info("prompt %s answered %s: result %s", prompt.checkout_request_id, outcome,
                 prompt.result_code)
        if prompt.result_code == 0:
            self._record_stk_as_c2b(prompt)
        drop, copies, delay = self.faults.callback_plan()
        if drop:
            self._book.note_callback(checkout_request_id, dropped=True)
            return
        body = callback_body(prompt)

        def record(ok: bool) -> None:
            self._book.note_callback(checkout_request_id, sent=int(ok), failed=int(not ok))

        self._scheduler.call_later(delay,
                                   lambda: deliver(prompt.callback_url, body, copies, record))

    def _record_stk_as_c2b(self, prompt: Any) -> None:
        """An STK payment to the paybill: in the Pull history, and confirmed through the
        registered C2B URL too when the `c2b_for_stk` fault says so."""
        book = self._accounts.by_shortcode(prompt.shortcode).c2b
        transaction = C2BTransaction(
            trans_id=prompt.receipt, trans_time=datetime.now(EAT).replace(microsecond=0),
            transaction_type="Pay Bill Online", amount=prompt.amount,
            shortcode=book.shortcode, bill_ref=prompt.account_reference,
            msisdn=prompt.phone)
        book.record(transaction)
        if self.faults.c2b_for_stk:
            self._send_confirmation(transaction)

    def _send_confirmation(self, transaction: C2BTransaction) -> None:
        drop, copies, delay = self.faults.callback_plan()
        book = self._accounts.by_shortcode(transaction.shortcode).c2b
        if not drop:
            self._scheduler.call_later(delay, lambda: book.confirm(transaction, copies))

    def c2b_transactions(self) -> list[dict[str, Any]]:
        return [row for account in self._accounts.all() for row in account.c2b.snapshot()]

    def new_request_id(self) -> str:
        return self._book.new_request_id()

    # -- Daraja endpoints (called by app.py) ---------------------------------------------------

    def issue_token(self, authorization: str | None, grant_type: str | None) -> dict[str, str]:
        self._count("oauth")
        key, secret = _basic_credentials(authorization)
        if grant_type != "client_credentials":
            raise ApiError(WRONG_GRANT_TYPE, "Invalid grant type passed")
        account = self._accounts.by_credentials(key, secret)
        if account is None:
            raise ApiError(WRONG_AUTH_TYPE, "Invalid Authentication passed")
        return {"access_token": account.tokens.issue(), "expires_in": str(account.tokens.ttl)}

    def handle_push(self, authorization: str | None, body: Any) -> dict[str, str]:
        self._count("stkpush")
        account = self._gate(authorization)
        now = datetime.now(EAT)
        fields = parse_push(body, account.merchant, now) | {
            "shortcode": account.merchant.shortcode}
        try:
            prompt = self._book.add(now, **fields)
        except SubscriberLocked:
            raise ApiError(MERCHANT_ERROR, LOCKED) from None
        self._schedule_auto_answer(prompt.checkout_request_id, prompt.phone)
        if self.faults.take_timeout():
            self._stopping.wait(self.faults.hang_seconds)
        return {"MerchantRequestID": prompt.merchant_request_id,
                "CheckoutRequestID": prompt.checkout_request_id,
                "ResponseCode": "0", "ResponseDescription": ACCEPTED, "CustomerMessage": ACCEPTED}

    def handle_query(self, authorization: str | None, body: Any) -> dict[str, str]:
        self._count("stkquery")
        account = self._gate(authorization)
        checkout_id = parse_query(body, account.merchant, datetime.now(EAT))
        try:
            prompt = self._book.get(checkout_id)
        except UnknownPrompt:
            raise invalid("CheckoutRequestID") from None
        if prompt.shortcode != account.merchant.shortcode:  # another account's prompt
            raise invalid("CheckoutRequestID")
        if prompt.state == PENDING:
            raise ApiError(MERCHANT_ERROR, "The transaction is being processed")
        return {"ResponseCode": "0", "ResponseDescription": QUERY_ACCEPTED,
                "MerchantRequestID": prompt.merchant_request_id,
                "CheckoutRequestID": prompt.checkout_request_id,
                "ResultCode": str(prompt.result_code), "ResultDesc": prompt.result_desc}

    def handle_c2b_register(self, authorization: str | None, body: Any) -> dict[str, str]:
        self._count("c2b_register")
        return self._gate(authorization).c2b.register(body)

    def handle_c2b_simulate(self, authorization: str | None, body: Any) -> dict[str, str]:
        """The customer pays from the M-Pesa menu: validation, then confirmation (async)."""
        self._count("c2b_simulate")
        book = self._gate(authorization).c2b
        amount, msisdn, bill_ref = book.parse_simulate(body)
        transaction = C2BTransaction(
            trans_id=self._book.new_receipt(), trans_time=datetime.now(EAT).replace(microsecond=0),
            transaction_type="Pay Bill", amount=amount, shortcode=book.shortcode,
            bill_ref=bill_ref, msisdn=msisdn)
        self._scheduler.call_later(0, lambda: self._run_c2b(transaction))
        return {"OriginatorCoversationID": self.new_request_id(), "ResponseCode": "0",
                "ResponseDescription": "Accept the service request successfully.",
                "TransID": transaction.trans_id}

    def _run_c2b(self, transaction: C2BTransaction) -> None:
        book = self._accounts.by_shortcode(transaction.shortcode).c2b
        if not book.validate(transaction):
            transaction.state = "rejected"
            book.record(transaction)
            return
        book.record(transaction)
        self._send_confirmation(transaction)

    def handle_pull_register(self, authorization: str | None, body: Any) -> dict[str, str]:
        self._count("pull_register")
        return self._gate(authorization).c2b.register_pull(body)

    def handle_pull_query(self, authorization: str | None, body: Any) -> dict[str, Any]:
        self._count("pull_query")
        return self._gate(authorization).c2b.query(body, datetime.now(EAT))

    # -- internals --------------------------------------------------------------------------

    def _count(self, name: str) -> None:
        with self._counts_lock:
            self._counts[name] += 1

    def _gate(self, authorization: str | None) -> Account:
        """Spike-arrest fault first (the gateway answers before auth), then the token;
        returns the account the token belongs to."""
        if self.faults.take_spike_arrest():
            raise ApiError(SPIKE_ARREST, "Spike arrest violation")
        if self.faults.take_quota():
            raise ApiError(QUOTA, "Quota Violation")
        scheme, _, token = (authorization or "").partition(" ")
        lifetime = self.faults.token_lifetime
        if lifetime:
            for account in self._accounts.all():
                if account.tokens.age() > lifetime:
                    account.tokens.invalidate_all()
        account = self._accounts.by_token(token.strip()) if scheme == "Bearer" else None
        if account is None:
            raise ApiError(INVALID_TOKEN, "Invalid Access Token")
        return account

    def _schedule_auto_answer(self, checkout_id: str, phone: str) -> None:
        outcome = auto_outcome(phone)
        if outcome is None:
            return
        delay = self.approve_delay if phone == SANDBOX_TEST_MSISDN else self.auto_resolve_delay

        def answer() -> None:
            with contextlib.suppress(PromptNotPending):  # answered on the phone page first
                self.resolve(checkout_id, outcome)

        self._scheduler.call_later(delay, answer)


def _basic_credentials(authorization: str | None) -> tuple[str, str]:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme != "Basic":
        raise ApiError(WRONG_AUTH_TYPE, "Invalid Authentication passed")
    try:
        key, sep, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError(WRONG_AUTH_TYPE, "Invalid Authentication passed") from None
    if not sep:
        raise ApiError(WRONG_AUTH_TYPE, "Invalid Authentication passed")
    return key, secret
