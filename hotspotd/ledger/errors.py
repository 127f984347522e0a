"""Typed billing errors; the web layer turns them into a status and customer-facing words."""

from __future__ import annotations


class BillingError(Exception):
    """A request the billing core refuses. `code` is stable, `message` is for the customer."""

    code = "invalid_request"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidMac(BillingError):
    code = "invalid_mac"


class InvalidPhone(BillingError):
    code = "invalid_phone"


class UnknownPlan(BillingError):
    code = "unknown_plan"


class UnknownPayment(BillingError):
    code = "not_found"
    status = 404


class UnknownDevice(BillingError):
    code = "not_found"
    status = 404


class PaymentNotSent(BillingError):
    """Daraja refused or could not be reached; the payment is stored as failed."""

    code = "payment_not_sent"
    status = 502
