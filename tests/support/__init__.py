"""Helpers shared by the test modules (independent protocol peers, fixtures)."""
