"""What the owner UI takes from the configuration's `[admin]` section and the wiring code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AdminOptions:
    secret_key: str = ""  # signs the session cookie; empty: a random key for this process
    utc_offset_minutes: int = 180
    login_attempts: int = 5
    lockout_seconds: int = 900
    session_hours: int = 12
    public_url: str = ""
