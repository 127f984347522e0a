"""The simulator's STK prompts: what was pushed, how each ended, and the outcome tables."""

from __future__ import annotations

import random
import string
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime

PENDING = "pending"
RESOLVED = "resolved"

SANDBOX_TEST_MSISDN = "254708374149"  # approves by itself after approve_delay
AUTO_PREFIX = "2547000000"            # 2547000000NN resolves by itself per AUTO_OUTCOMES

RESULT_DESCRIPTIONS: dict[int, str] = {
    0: "The service request is processed successfully.",
    1: "The balance is insufficient for the transaction.",
    17: "Rule limited.",
    1019: "Transaction has expired",
    1032: "Request cancelled by user",
    1037: "DS timeout user cannot be reached",
    2001: "The initiator information is invalid.",
    2028: "The request is not permitted according to product assignment",
}

# What the customer does on the phone -> the result code Daraja reports.
OUTCOMES: dict[str, int] = {
    "approve": 0,
    "insufficient": 1,
    "rule_limited": 17,
    "expire": 1019,
    "cancel": 1032,
    "ignore": 1037,  # the customer lets the prompt time out
    "wrong_pin": 2001,
}
_OUTCOME_BY_CODE = {code: name for name, code in OUTCOMES.items()}
WRONG_PARTY_CODE = 2028  # an approved push whose TransactionType / PartyB do not match

# Phone numbers 2547000000NN answer by themselves: NN -> (result code, ResultDesc).
# A None code never answers: the prompt stays pending and STK Query keeps saying
# "The transaction is being processed".
AUTO_OUTCOMES: dict[str, tuple[int | None, str]] = {
    **{nn: (code, RESULT_DESCRIPTIONS[code]) for nn, code in (
        ("00", 0), ("01", 1), ("17", 17), ("19", 1019), ("20", 2001), ("32", 1032),
        ("37", 1037))},
    "99": (None, "Never answers: the prompt stays pending"),
}


def auto_outcomes_markdown() -> str:
    """AUTO_OUTCOMES as a Markdown table, for the README (and a test that compares them)."""
    rows = ["| phone number | result code | ResultDesc |", "|---|---|---|"]
    for nn, (code, description) in AUTO_OUTCOMES.items():
        shown = "none (stays pending)" if code is None else str(code)
        rows.append(f"| {AUTO_PREFIX}{nn} | {shown} | {description} |")
    return "\n".join(rows)


def auto_outcome(phone: str) -> str | None:
    """The outcome a number answers with by itself, or None (wait for the phone page)."""
    if phone == SANDBOX_TEST_MSISDN:
        return "approve"
    if phone.startswith(AUTO_PREFIX) and len(phone) == 12:
        code = AUTO_OUTCOMES.get(phone[-2:], (None, ""))[0]
        return None if code is None else _OUTCOME_BY_CODE[code]
    return None


class UnknownPrompt(KeyError):
    """No STK push with this CheckoutRequestID."""


class PromptNotPending(ValueError):
    """The prompt was already answered."""


class SubscriberLocked(Exception):
    """The phone already has an open prompt."""


@dataclass
class Prompt:
    merchant_request_id: str
    checkout_request_id: str
    phone: str
    amount: int
    party_b: str
    transaction_type: str
    account_reference: str
    description: str
    callback_url: str
    wrong_party: bool  # TransactionType / PartyB incoherent: approving yields 2028
    created_at: float
    state: str = PENDING
    outcome: str | None = None
    result_code: int | None = None
    result_desc: str = ""
    receipt: str | None = None
    transaction_date: int | None = None  # YYYYMMDDHHmmss as a number, like the callback
    resolved_at: float | None = None
    callbacks_sent: int = 0
    callbacks_failed: int = 0
    callback_dropped: bool = False
    shortcode: str = ""  # the account (BusinessShortCode) it was pushed with


class PromptBook:
    """All prompts of one simulator, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._prompts: dict[str, Prompt] = {}
        self._receipts: set[str] = set()
        self._rng = random.SystemRandom()

    def new_request_id(self) -> str:
        """An ID shaped like Daraja's MerchantRequestID / requestId: `29115-34620561-1`."""
        return f"{self._rng.randint(10000, 99999)}-{self._rng.randint(10**7, 10**8 - 1)}-1"

    def add(self, now: datetime, phone: str, **fields: object) -> Prompt:
        """Record a new pending prompt with fresh IDs; SubscriberLocked if one is open."""
        with self._lock:
            if any(p.phone == phone and p.state == PENDING for p in self._prompts.values()):
                raise SubscriberLocked(phone)
            checkout_id = self._new_checkout_id(now)
            prompt = Prompt(merchant_request_id=self.new_request_id(),
                            checkout_request_id=checkout_id, phone=phone,
                            created_at=time.time(), **fields)  # type: ignore[arg-type]
            self._prompts[checkout_id] = prompt
            return prompt

    def get(self, checkout_id: str) -> Prompt:
        with self._lock:
            prompt = self._prompts.get(checkout_id)
            if prompt is None:
                raise UnknownPrompt(checkout_id)
            return Prompt(**asdict(prompt))

    def finish(self, checkout_id: str, outcome: str, now: datetime) -> Prompt:
        """Resolve a pending prompt; returns a copy of it as resolved."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; one of {', '.join(OUTCOMES)}")
        with self._lock:
            prompt = self._prompts.get(checkout_id)
            if prompt is None:
                raise UnknownPrompt(checkout_id)
            if prompt.state != PENDING:
                raise PromptNotPending(checkout_id)
            code = OUTCOMES[outcome]
            if code == 0 and prompt.wrong_party:
                code = WRONG_PARTY_CODE
            prompt.state, prompt.outcome, prompt.result_code = RESOLVED, outcome, code
            prompt.result_desc = RESULT_DESCRIPTIONS[code]
            prompt.resolved_at = time.time()
            if code == 0:
                prompt.receipt = self._new_receipt()
                prompt.transaction_date = int(now.strftime("%Y%m%d%H%M%S"))
            return Prompt(**asdict(prompt))

    def note_callback(self, checkout_id: str, *, sent: int = 0, failed: int = 0,
                      dropped: bool = False) -> None:
        with self._lock:
            prompt = self._prompts[checkout_id]
            prompt.callbacks_sent += sent
            prompt.callbacks_failed += failed
            prompt.callback_dropped = prompt.callback_dropped or dropped

    def snapshot(self) -> list[dict[str, object]]:
        with self._lock:
            return [asdict(prompt) for prompt in self._prompts.values()]

    def new_receipt(self) -> str:
        """A fresh M-Pesa receipt / C2B TransID, unique in this simulator."""
        with self._lock:
            return self._new_receipt()

    def _new_checkout_id(self, now: datetime) -> str:
        while True:
            candidate = f"ws_CO_{now.strftime('%d%m%Y%H%M%S')}{self._rng.randint(0, 9999):04d}"
            if candidate not in self._prompts:
                return candidate

    def _new_receipt(self) -> str:
        alphabet = string.ascii_uppercase + string.digits
        while True:
            receipt = "SIM" + "".join(self._rng.choice(alphabet) for _ in range(7))
            if receipt not in self._receipts:
                self._receipts.add(receipt)
                return receipt
