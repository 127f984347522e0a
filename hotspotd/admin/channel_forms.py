"""Adding and editing Daraja channels from the owner UI, through `mpesa.channels`.

Secrets (consumer key and secret, passkey) are write-only: the form never shows them, an
empty secret field keeps the stored one, and a new channel needs all three. The callback
path token of a new channel is generated here and kept on edits. The audit row says which
secrets changed, never what they are.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping

from hotspotd.admin.actions import Actor
from hotspotd.admin.audit import record_audit
from hotspotd.admin.settings_store import SettingsRefused
from hotspotd.config.overrides import REDACTED
from hotspotd.config.schema import digits, url
from hotspotd.mpesa.channels import KINDS, SECRET_FIELDS, Channel, load_channels, save_channel
from hotspotd.secretbox import SecretBox
from hotspotd.store.db import Database

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
ENVIRONMENTS = {"sandbox": "https://sandbox.safaricom.co.ke",
                "production": "https://api.safaricom.co.ke"}
FORM_SECRETS = ("consumer_key", "consumer_secret", "passkey")  # callback_token: generated


def stored_channels(db: Database, box: SecretBox) -> dict[str, Channel]:
    return {channel.name: channel for channel in load_channels(db, box)}


def save_channel_form(db: Database, box: SecretBox, actor: Actor,
                      form: Mapping[str, str]) -> tuple[Channel, bool]:
    """Check the form, then add or update the channel. Returns (channel, created).
    Raises SettingsRefused with every problem found; nothing is stored then."""
    name = form.get("name", "").strip().lower()
    existing = stored_channels(db, box).get(name)
    channel, problems = _parse(form, name, existing)
    if problems:
        raise SettingsRefused(problems)
    assert channel is not None
    save_channel(db, box, channel, actor.now)
    before = _audited(existing) if existing else None
    after = _audited(channel, previous=existing)
    with db.write() as conn:
        record_audit(conn, at=actor.now, username=actor.username,
                     action="channel.update" if existing else "channel.create",
                     target=name, before=before, after=after, source_ip=actor.source_ip)
    return channel, existing is None


def _parse(form: Mapping[str, str], name: str,
           existing: Channel | None) -> tuple[Channel | None, list[str]]:
    problems = []
    if not NAME.match(name) or name == "default":
        problems.append("Name: use 1-32 lower-case letters, digits or dashes (not"
                        " \"default\", which is the configuration file's channel).")
    kind = form.get("kind", "")
    if kind not in KINDS:
        problems.append(f"Kind: choose {' or '.join(KINDS)}.")
    environment = form.get("environment", "")
    if environment not in ENVIRONMENTS:
        problems.append("Environment: choose sandbox or production.")
    base_url = form.get("base_url", "").strip() or ENVIRONMENTS.get(environment, "")
    if not url().accept(base_url):
        problems.append("Base URL: expected an http:// or https:// URL.")
    shortcode = form.get("shortcode", "").strip()
    if not shortcode or not digits().accept(shortcode):
        problems.append("Shortcode: expected a string of digits.")
    till = form.get("till_number", "").strip()
    if not digits(optional=True).accept(till):
        problems.append("Till number: expected a string of digits.")
    elif kind == "till" and not till:
        problems.append("Till number: a till channel needs one.")
    given = {field: form.get(field, "").strip() for field in FORM_SECRETS}
    if existing is None:
        missing = [field.replace("_", " ") for field in FORM_SECRETS if not given[field]]
        if missing:
            problems.append(f"A new channel needs its {', '.join(missing)}.")
    if problems:
        return None, problems
    kept = {field: given[field] or (getattr(existing, field) if existing else "")
            for field in FORM_SECRETS}
    token = existing.callback_token if existing else secrets.token_urlsafe(24)
    channel = Channel(name=name, kind=kind, environment=environment, base_url=base_url,
                      shortcode=shortcode, till_number=till, callback_token=token, **kept)
    return channel, []


def _audited(channel: Channel, previous: Channel | None = None) -> dict[str, str]:
    """The channel as the audit log keeps it: public fields, and for each secret only
    whether it changed."""
    shown = channel.public()
    for field in SECRET_FIELDS:
        if previous is None:
            shown[field] = REDACTED
        else:
            same = getattr(previous, field) == getattr(channel, field)
            shown[field] = REDACTED + ("" if same else " (changed)")
    return shown
