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
    public_url: str = ""  # [web] public_url: https there makes the session cookie Secure
    metrics_token: str = ""  # /metrics and /healthz detail on a shared listener; "": never
    own_listener: bool = False  # [admin] host set: the owner UI is not on the portal's
    setup_code_hours: int = 24
