"""Log lines fit for journald: one event per line, secrets and phone numbers masked.

`MaskingFilter` sits on the handler, so it sees every record of every logger (and the
formatted traceback of an exception): it replaces each known secret value with `***` and
every Kenyan phone number with a masked form (`2547*****149`). `JournalFormatter` keeps an
event on one line (newlines of messages and tracebacks become ` | `) and, when stderr is
connected to the journal (`JOURNAL_STREAM` set by systemd), prefixes the syslog priority
(`<3>` for errors) and leaves the timestamp to journald.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping

from hotspotd.daraja.msisdn import mask_msisdn

MASK = "***"
# 2547XXXXXXXX / 2541XXXXXXXX, optionally +, or the local 07XXXXXXXX / 01XXXXXXXX form,
# not inside a longer run of digits (receipts, ids and amounts stay readable).
PHONE = re.compile(r"(?<![\dA-Za-z])(\+?254|0)([17]\d{8})(?![\dA-Za-z])")
SYSLOG_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4,
                   logging.INFO: 6, logging.DEBUG: 7}
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words


def mask_phone_numbers(text: str) -> str:
    """Every phone number in `text` masked by `mask_msisdn`: `254712345678` → `2547*****678`."""
    return PHONE.sub(lambda m: mask_msisdn(m[0]), text)


class MaskingFilter(logging.Filter):
    """Masks secrets and phone numbers in every record that passes the handler."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self.add_secrets(secrets)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        self._secrets.update(s for s in secrets if isinstance(s, str)
                             and len(s) >= MIN_SECRET_LENGTH)

    def mask(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, MASK)
        return mask_phone_numbers(text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: log what we have rather than nothing
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = self.mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True


class JournalFormatter(logging.Formatter):
    """One event per line; syslog priority prefix and no timestamp under journald."""

    def __init__(self, *, journal: bool) -> None:
        fmt = "%(name)s: %(message)s" if journal else \
            "%(asctime)s %(levelname)s %(name)s: %(message)s"
        super().__init__(fmt)
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = " | ".join(line for line in super().format(record).splitlines() if line.strip())
        if self.journal:
            return f"<{SYSLOG_PRIORITY.get(record.levelno, 6)}>{text}"
        return text


def under_journal(env: Mapping[str, str] | None = None) -> bool:
    """True when systemd connected our stderr to the journal."""
    return bool((os.environ if env is None else env).get("JOURNAL_STREAM"))
