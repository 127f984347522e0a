"""Daraja sandbox simulator: OAuth, STK push/query, callbacks, phone page, faults."""
