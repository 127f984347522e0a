"""C2B and Pull Transactions in the simulator: registered URLs, payments made from the
M-Pesa menu (validation, then confirmation), and the 48-hour history Pull answers from.

Simulator choices (the reference leaves them open): STK payments to the paybill also appear
in the Pull history (`transactiontype` "Pay Bill Online", `billreference` the push's
AccountReference); a Pull query needs a prior Pull registration (else 400.002.02); it
answers 100 rows per page, `Response` as a list holding one list of rows.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import requests

from .validation import EAT, MSISDN, ApiError, invalid

log = logging.getLogger(__name__)

PAGE_ROWS = 100
HISTORY = timedelta(hours=48)
VALIDATION_TIMEOUT = 8.0
CALLBACK_TIMEOUT = 5.0


@dataclass
class C2BTransaction:
    trans_id: str
    trans_time: datetime
    transaction_type: str
    amount: int
    shortcode: str
    bill_ref: str
    msisdn: str
    state: str = "confirmed"  # or "rejected" (validation refused it)
    confirmations_sent: int = 0

    def payload(self, *, validation: bool) -> dict[str, str]:
        """The validation/confirmation body; MSISDN hashed as Daraja v1 does."""
        return {"TransactionType": self.transaction_type, "TransID": self.trans_id,
                "TransTime": self.trans_time.strftime("%Y%m%d%H%M%S"),
                "TransAmount": f"{self.amount}.00", "BusinessShortCode": self.shortcode,
                "BillRefNumber": self.bill_ref, "InvoiceNumber": "",
                "OrgAccountBalance": "" if validation else "1000.00", "ThirdPartyTransID": "",
                "MSISDN": hashlib.sha256(self.msisdn.encode()).hexdigest(),
                "FirstName": "John", "MiddleName": "", "LastName": "Doe"}

    def pull_row(self) -> dict[str, str]:
        return {"transactionId": self.trans_id,
                "trxDate": self.trans_time.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "msisdn": self.msisdn[:4] + "*****" + self.msisdn[-3:],
                "sender": "", "transactiontype": self.transaction_type,
                "billreference": self.bill_ref, "amount": str(self.amount),
                "organizationname": "Simulated Venue"}


class C2BBook:
    def __init__(self, shortcode: str) -> None:
        self.shortcode = shortcode
        self._lock = threading.Lock()
        self._transactions: list[C2BTransaction] = []
        self.urls: dict[str, str] = {}
        self.pull_callback: str | None = None

    def register(self, body: Any) -> dict[str, str]:
        if not isinstance(body, dict):
            raise invalid("JSON body")
        if str(body.get("ShortCode", "")) != self.shortcode:
            raise invalid("ShortCode")
        if body.get("ResponseType") not in ("Completed", "Cancelled"):
            raise invalid("ResponseType")
        for key in ("ConfirmationURL", "ValidationURL"):
            if not str(body.get(key, "")).startswith(("http://", "https://")):
                raise invalid(key)
        with self._lock:
            self.urls = {"confirmation": body["ConfirmationURL"],
                         "validation": body["ValidationURL"],
                         "response_type": body["ResponseType"]}
        return {"OriginatorCoversationID": f"sim-{len(self._transactions)}",
                "ResponseCode": "0", "ResponseDescription": "Success"}

    def register_pull(self, body: Any) -> dict[str, str]:
        if not isinstance(body, dict) or str(body.get("ShortCode", "")) != self.shortcode:
            raise invalid("ShortCode")
        if body.get("RequestType") != "Pull" or not body.get("CallBackURL"):
            raise invalid("RequestType")
        with self._lock:
            already = self.pull_callback is not None
            self.pull_callback = str(body["CallBackURL"])
        return {"ResponseRefID": "sim-pull", "ResponseStatus": "1001" if already else "1000",
                "ShortCode": self.shortcode,
                "Response": "Already registered" if already else "ShortCode Registered"}

    def parse_simulate(self, body: Any) -> tuple[int, str, str]:
        """(amount, msisdn, bill_ref) of a sandbox C2B simulate request."""
        if not isinstance(body, dict):
            raise invalid("JSON body")
        if str(body.get("ShortCode", "")) != self.shortcode:
            raise invalid("ShortCode")
        if body.get("CommandID") not in ("CustomerPayBillOnline", "CustomerBuyGoodsOnline"):
            raise invalid("CommandID")
        amount = body.get("Amount")
        if isinstance(amount, str) and amount.isdigit():
            amount = int(amount)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise invalid("Amount")
        msisdn = str(body.get("Msisdn", ""))
        if not MSISDN.fullmatch(msisdn):
            raise invalid("Msisdn")
        return amount, msisdn, str(body.get("BillRefNumber", ""))[:20]

    def record(self, transaction: C2BTransaction) -> None:
        with self._lock:
            self._transactions.append(transaction)

    def query(self, body: Any, now: datetime) -> dict[str, Any]:
        if self.pull_callback is None:
            raise ApiError("400.002.02", "Bad Request - ShortCode not registered for Pull")
        if not isinstance(body, dict):
            raise invalid("JSON body")
        try:
            start = datetime.strptime(str(body["StartDate"]), "%Y-%m-%d %H:%M:%S")
            end = datetime.strptime(str(body["EndDate"]), "%Y-%m-%d %H:%M:%S")
            offset = int(str(body.get("OffSetValue", "0")))
        except (KeyError, ValueError):
            raise invalid("StartDate") from None
        start, end = start.replace(tzinfo=EAT), end.replace(tzinfo=EAT)
        start = max(start, now - HISTORY)
        with self._lock:
            found = [t.pull_row() for t in self._transactions
                     if t.state == "confirmed" and start <= t.trans_time <= end]
        page = found[offset:offset + PAGE_ROWS]
        if not page:
            return {"ResponseRefID": "sim", "ResponseCode": "1001",
                    "ResponseMessage": "No records found", "Response": [[]]}
        return {"ResponseRefID": "sim", "ResponseCode": "1000", "ResponseMessage": "Success",
                "Response": [page]}

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(t) | {"trans_time": t.trans_time.isoformat()}
                    for t in self._transactions]

    def validate(self, transaction: C2BTransaction) -> bool:
        """Ask the registered validation URL; unreachable -> ResponseType decides."""
        url = self.urls.get("validation")
        if not url:
            return True
        try:
            reply = requests.post(url, json=transaction.payload(validation=True),
                                  timeout=VALIDATION_TIMEOUT).json()
        except (requests.RequestException, ValueError):
            return self.urls.get("response_type") == "Completed"
        return str(reply.get("ResultCode", "")) == "0" if isinstance(reply, dict) else False

    def confirm(self, transaction: C2BTransaction, copies: int) -> None:
        url = self.urls.get("confirmation")
        if not url:
            return
        for _ in range(copies):
            try:
                requests.post(url, json=transaction.payload(validation=False),
                              timeout=CALLBACK_TIMEOUT)
                with self._lock:
                    transaction.confirmations_sent += 1
            except requests.RequestException as exc:
                log.warning("C2B confirmation %s failed: %s", transaction.trans_id,
                            exc.__class__.__name__)
