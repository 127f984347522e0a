"""Daraja sandbox simulator: OAuth, STK push/query, callbacks, phone page, faults."""

from .faults import Faults
from .simulator import DarajaSimulator
from .state import AUTO_OUTCOMES, OUTCOMES, RESULT_DESCRIPTIONS, SANDBOX_TEST_MSISDN

__all__ = ["AUTO_OUTCOMES", "OUTCOMES", "RESULT_DESCRIPTIONS", "SANDBOX_TEST_MSISDN",
           "DarajaSimulator", "Faults"]
