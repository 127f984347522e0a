"""Safaricom Daraja (M-Pesa): result codes, phone numbers, the HTTP client."""
