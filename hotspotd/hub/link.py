"""The appliance's enrolment with its hub: URL, CA file, id and key (encrypted at rest).

The key is stored in `hub_state.key_enc`, sealed with the appliance's secret box (the same
AES-GCM key file that protects the Daraja and router secrets), bound to the purpose
"hub.appliance_key": a copied database alone does not reveal it. It is never logged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests

from hotspotd.hub.protocol import ENROL_PATH
from hotspotd.secretbox import SecretBox
from hotspotd.store.db import Database

KEY_PURPOSE = "hub.appliance_key"


class EnrolmentError(Exception):
    """Enrolment failed; the message says why (the hub's reason when it gave one)."""


@dataclass(frozen=True)
class HubLink:
    hub_url: str
    appliance_id: int
    key: str
    ca_file: str | None

    @property
    def verify(self) -> str | bool:
        """What `requests` verifies the hub's certificate against."""
        return self.ca_file or True

    def __repr__(self) -> str:
        return f"HubLink({self.hub_url!r}, appliance={self.appliance_id})"


def load_link(db: Database, box: SecretBox) -> HubLink | None:
    """The stored enrolment, or None when this appliance was never enrolled."""
    row = db.query_one("SELECT hub_url, ca_file, appliance_id, key_enc FROM hub_state"
                       " WHERE id = 1")
    if row is None or row["key_enc"] is None:
        return None
    return HubLink(row["hub_url"], row["appliance_id"],
                   box.decrypt(row["key_enc"], purpose=KEY_PURPOSE), row["ca_file"])


def enrol_appliance(db: Database, box: SecretBox, hub_url: str, token: str,
                    ca_file: str | None = None, timeout: float = 15.0) -> HubLink:
    """Trade the operator's one-time token for this appliance's id and key, and store them."""
    if not hub_url.startswith("https://") and not hub_url.startswith("http://127."):
        raise EnrolmentError("the hub URL must be https:// (the key must not cross the"
                             " network in clear)")
    url = hub_url.rstrip("/") + ENROL_PATH
    try:
        answer = requests.post(url, json={"token": token}, timeout=timeout,
                               verify=ca_file or True)
    except requests.RequestException as exc:
        raise EnrolmentError(f"cannot reach the hub at {hub_url}: {exc}") from None
    body = _json(answer)
    if answer.status_code != 200:
        raise EnrolmentError(f"the hub refused the token ({answer.status_code}"
                             f" {body.get('error', '')}): {body.get('reason', answer.text[:200])}")
    link = HubLink(hub_url.rstrip("/") + "/", int(body["appliance"]), str(body["key"]), ca_file)
    with db.write() as conn:
        conn.execute("UPDATE hub_state SET hub_url = ?, ca_file = ?, appliance_id = ?,"
                     " key_enc = ?, enrolled_at = ?, shipped_seq = 0, last_error = NULL"
                     " WHERE id = 1", (link.hub_url, ca_file, link.appliance_id,
                                       box.encrypt(link.key, purpose=KEY_PURPOSE), time.time()))
    return link


def _json(answer: requests.Response) -> dict:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
