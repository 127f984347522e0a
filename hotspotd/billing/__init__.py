"""Billing core: plans, payments, grants and entitlements, kept in SQLite."""
