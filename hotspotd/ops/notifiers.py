"""Where owner alerts (and optional customer receipts) go: one small interface, three backends.

`[alerts] backend` picks one: "log" (only the log), "sms" (Africa's Talking bulk SMS HTTP
API; the sandbox or the embedded simulator work the same), "email" (SMTP). Alerts are
always logged as well, whatever the backend.
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from typing import Any, Protocol

import requests

from hotspotd.config import Config, ConfigError

log = logging.getLogger(__name__)


class NotifyError(Exception):
    """A message could not be delivered (the caller logs it and tries again later)."""


class Notifier(Protocol):
    name: str

    def send(self, recipients: list[str], subject: str, text: str) -> None: ...


class LogNotifier:
    name = "log"

    def send(self, recipients: list[str], subject: str, text: str) -> None:
        log.warning("ALERT %s: %s", subject, text)


class AfricasTalkingSms:
    """POST {base_url}/version1/messaging (form: username, to, message[, from]; apiKey)."""

    name = "sms"

    def __init__(self, *, base_url: str, username: str, api_key: str, sender: str = "",
                 timeout: float = 10.0, session: Any = None) -> None:
        self.url = base_url.rstrip("/") + "/version1/messaging"
        self.username, self._api_key, self.sender = username, api_key, sender
        self.timeout = timeout
        self.session = session or requests.Session()

    def send(self, recipients: list[str], subject: str, text: str) -> None:
        form = {"username": self.username, "to": ",".join(_plus(r) for r in recipients),
                "message": f"{subject}: {text}"[:459]}
        if self.sender:
            form["from"] = self.sender
        try:
            response = self.session.post(self.url, data=form, timeout=self.timeout, headers={
                "apiKey": self._api_key, "Accept": "application/json"})
        except requests.RequestException as exc:
            raise NotifyError(f"SMS gateway unreachable: {exc.__class__.__name__}") from None
        if response.status_code not in (200, 201):
            raise NotifyError(f"SMS gateway answered HTTP {response.status_code}")
        try:
            results = response.json()["SMSMessageData"]["Recipients"]
        except (ValueError, KeyError, TypeError):
            raise NotifyError("SMS gateway answered something unexpected") from None
        failed = [r.get("status") for r in results if r.get("status") != "Success"]
        if failed or not results:
            raise NotifyError(f"SMS refused for {len(failed)} recipient(s): {failed[:3]}")


def _plus(number: str) -> str:
    number = number.strip()
    return number if number.startswith("+") else "+" + number


class EmailNotifier:
    name = "email"

    def __init__(self, *, host: str, port: int, starttls: bool, user: str, password: str,
                 sender: str, timeout: float = 10.0) -> None:
        self.host, self.port, self.starttls = host, port, starttls
        self.user, self._password, self.sender = user, password, sender
        self.timeout = timeout

    def send(self, recipients: list[str], subject: str, text: str) -> None:
        message = EmailMessage()
        message["From"], message["To"] = self.sender, ", ".join(recipients)
        message["Subject"] = f"[hotspotd] {subject}"
        message.set_content(text)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.user:
                    smtp.login(self.user, self._password)
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise NotifyError(f"e-mail to {self.host}:{self.port} failed: {exc}") from None


def build_notifier(config: Config) -> Notifier:
    """The backend `[alerts] backend` names; ConfigError if it lacks what it needs."""
    cfg = config.alerts
    if cfg.backend == "log":
        return LogNotifier()
    where = str(config.source or "configuration")
    needed = [("recipients", cfg.recipients)]
    if cfg.backend == "sms":
        needed += [("sms_username", cfg.sms_username), ("sms_api_key", cfg.sms_api_key)]
    missing = [name for name, value in needed if not value]
    if missing:
        raise ConfigError(f"{where}: " + "; ".join(
            f"[alerts] {name} is required when backend = {cfg.backend!r}" for name in missing))
    if cfg.backend == "sms":
        return AfricasTalkingSms(base_url=cfg.sms_base_url, username=cfg.sms_username,
                                 api_key=cfg.sms_api_key, sender=cfg.sms_sender)
    return EmailNotifier(host=cfg.email_host, port=cfg.email_port,
                         starttls=cfg.email_starttls, user=cfg.email_user,
                         password=cfg.email_password, sender=cfg.email_from)
