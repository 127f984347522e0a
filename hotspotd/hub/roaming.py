"""Vouchers that work at every venue of the operator's network: the appliance's side.

The portal's voucher form calls `NetworkVouchers.redeem` (wired in by hotspotd.app when
the appliance is enrolled with a hub). The rule (docs/HUB.md "Roaming"):
- a code this venue does not know is claimed at the hub; the hub's yes is granted here
  once per claim; no hub, no grant (it cannot be checked);
- a code of this venue is claimed at the hub first, so a claim from another venue cannot
  slip in; if the hub cannot be reached, or has not heard of the code yet, it is redeemed
  here anyway (the venue keeps selling offline) and the hub learns of it from the journal;
- the shipper asks the hub each round for claims other venues made on this venue's codes
  and marks those vouchers used here (`sync_claims`).
A code redeemed at home while offline and claimed elsewhere meanwhile is a conflict: both
customers keep their time, both venues and the hub record it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import requests

from hotspotd.daraja.msisdn import InvalidPhoneNumber, mask_msisdn, normalise_msisdn
from hotspotd.hub.link import HubLink, load_link
from hotspotd.hub.protocol import CLAIM_PATH, CLAIMS_PATH, TIME_CLAIM_PATH, TIME_CLAIMS_PATH
from hotspotd.ledger import recovery, vouchers
from hotspotd.ledger.grants import Grant
from hotspotd.secretbox import SecretBox
from hotspotd.store.db import Database

log = logging.getLogger(__name__)

CLAIM_TIMEOUT_SECONDS = 3.0  # the customer waits on the page
REFUSALS: dict[str, Callable[[str], vouchers.VoucherError]] = {
    "voucher_used": vouchers.VoucherUsed,
    "voucher_expired": vouchers.VoucherExpired,
}
UNKNOWN = "That voucher code is not valid. Check it and try again."
UNCHECKED = ("That code is not from this venue, and the other venues cannot be asked right"
             " now. Try again in a minute.")


class HubUnreachable(Exception):
    """The hub did not answer (or answered with a server error)."""


class ClaimRefused(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code, self.reason = code, reason


class NetworkVouchers:
    """Voucher redemption across the operator's network; see the module's rule."""

    def __init__(self, db: Database, box: SecretBox, *,
                 timeout: float = CLAIM_TIMEOUT_SECONDS) -> None:
        self.db, self.box, self.timeout = db, box, timeout

    def redeem(self, *, code: str, mac: str, ip: str | None, now: float) -> Grant:
        link = load_link(self.db, self.box)
        local = vouchers.find_voucher(self.db.connection(), code)
        if link is None or (local is not None and local.status != "unused"):
            return vouchers.redeem(self.db, code=code, mac=mac, ip=ip, now=now)
        normal = vouchers.normalise_code(code)
        try:
            answer = claim_voucher(link, normal, mac, self.timeout)
        except HubUnreachable as exc:
            if local is None:
                log.info("voucher of another venue not checked: %s", exc)
                raise vouchers.UnknownVoucher(UNCHECKED) from None
            log.info("hub unreachable: voucher %s redeemed here only", local.id)
            return vouchers.redeem(self.db, code=code, mac=mac, ip=ip, now=now)
        except ClaimRefused as refused:
            if local is not None and refused.code == "voucher_unknown":
                # not shipped to the hub yet: nobody else can have claimed it
                return vouchers.redeem(self.db, code=code, mac=mac, ip=ip, now=now)
            raise REFUSALS.get(refused.code, vouchers.UnknownVoucher)(
                UNKNOWN if refused.code not in REFUSALS else _words(refused.code)) from None
        if local is not None:
            return vouchers.redeem(self.db, code=code, mac=mac, ip=ip, now=now,
                                   claim_id=int(answer["claim"]))
        claim = vouchers.NetworkClaim(int(answer["claim"]), normal, str(answer["home"]),
                                      int(answer["seconds"]), answer.get("rate_limit"))
        return vouchers.grant_claimed(self.db, claim, mac=mac, ip=ip, now=now)


class NetworkRecovery:
    """"Paid at another venue, or your phone changed?": the receipt and the paying phone
    move the time left here, from this venue's payments or, through the hub, from a sister
    venue's (once per receipt, network-wide)."""

    def __init__(self, db: Database, box: SecretBox, *,
                 timeout: float = CLAIM_TIMEOUT_SECONDS) -> None:
        self.db, self.box, self.timeout = db, box, timeout

    def recover(self, *, receipt: str, phone: str, mac: str, ip: str | None,
                now: float) -> recovery.Recovery:
        try:
            return recovery.recover_time(self.db, receipt=receipt, phone=phone, mac=mac,
                                         ip=ip, now=now)
        except recovery.RecoveryRefused:  # not a payment of this venue
            link = load_link(self.db, self.box)
            if link is None:
                raise
        try:
            masked = mask_msisdn(normalise_msisdn(phone))
        except InvalidPhoneNumber:
            raise recovery.RecoveryRefused(recovery.NO_MATCH) from None
        code = recovery.normalise_receipt(receipt)
        answer = _ask(link, TIME_CLAIM_PATH, {"receipt": code, "phone_masked": masked,
                                              "mac": mac}, self.timeout, TIME_REFUSALS)
        moved = recovery.MovedTime(int(answer["claim"]), code, str(answer["home"]),
                                   int(answer["seconds"]))
        return recovery.grant_moved_in(self.db, moved, mac=mac, ip=ip, now=now)


TIME_REFUSALS: dict[str, Callable[[str], Exception]] = {
    "time_moved": lambda _: recovery.AlreadyRecovered(
        "The time of that payment was already moved to a device; it can move only once."),
    "time_over": lambda _: recovery.NothingToRecover(
        "The time bought with that payment has run out; there is nothing left to move."),
}


def _ask(link: HubLink, path: str, body: dict[str, Any], timeout: float,
         refusals: dict[str, Callable[[str], Exception]]) -> dict[str, Any]:
    """POST a claim to the hub; a refusal becomes the customer's error, no answer "no match"
    with a hint to try again (it cannot be checked now)."""
    try:
        answer = requests.post(link.hub_url.rstrip("/") + path, json=body, timeout=timeout,
                               headers={"Authorization": f"Bearer {link.key}"},
                               verify=link.verify)
    except requests.RequestException:
        raise recovery.RecoveryRefused(UNCHECKED_TIME) from None
    reply = _json(answer)
    if answer.status_code == 200:
        return reply
    error = str(reply.get("error", ""))
    if answer.status_code >= 500 or answer.status_code in (401, 403):
        raise recovery.RecoveryRefused(UNCHECKED_TIME)
    raise refusals.get(error, lambda _: recovery.RecoveryRefused(recovery.NO_MATCH))(error)


UNCHECKED_TIME = ("We could not match that receipt here, and the other venues cannot be asked"
                  " right now. Try again in a minute.")


def sync_time_claims(db: Database, link: HubLink, session: requests.Session, timeout: float,
                     now: Callable[[], float] = time.time) -> int:
    """Take off the paying devices here the time of payments that moved to other venues;
    how many moves were new. Raises HubUnreachable when the hub cannot say."""
    seen = db.query_one("SELECT time_claims_seen FROM hub_state WHERE id = 1")[0]
    claims = _get_claims(link, session, TIME_CLAIMS_PATH, seen, timeout)
    if not claims:
        return 0
    with db.write() as conn:
        for claim in claims:
            outcome = recovery.take_moved_away(
                conn, claim_id=int(claim["id"]), payment_id=int(claim["payment_local_id"]),
                seconds=int(claim["seconds"]), venue=str(claim["venue"]), now=now())
            if outcome == "conflict":
                log.warning("the time of receipt %s moved here and to %s: both keep it",
                            claim["receipt"], claim["venue"])
        conn.execute("UPDATE hub_state SET time_claims_seen = ? WHERE id = 1",
                     (max(int(claim["id"]) for claim in claims),))
    return len(claims)


def _get_claims(link: HubLink, session: requests.Session, path: str, after: int,
                timeout: float) -> list[dict[str, Any]]:
    try:
        answer = session.get(link.hub_url.rstrip("/") + path, params={"after": after},
                             headers={"Authorization": f"Bearer {link.key}"},
                             timeout=timeout, verify=link.verify)
    except requests.RequestException as exc:
        raise HubUnreachable(f"hub unreachable: {type(exc).__name__}") from None
    body = _json(answer)
    if answer.status_code != 200:  # refused (a revoked key says why) or failing
        raise HubUnreachable(f"{answer.status_code} {body.get('error', '')}:"
                             f" {body.get('reason', path)}".strip())
    claims = body.get("claims", [])
    return claims if isinstance(claims, list) else []


def _words(code: str) -> str:
    return {"voucher_used": "That voucher has already been used.",
            "voucher_expired": "That voucher has expired."}[code]


def claim_voucher(link: HubLink, code: str, mac: str, timeout: float) -> dict[str, Any]:
    """Ask the hub for voucher `code` for device `mac`: its answer, or why not."""
    try:
        answer = requests.post(link.hub_url.rstrip("/") + CLAIM_PATH,
                               json={"code": code, "mac": mac}, timeout=timeout,
                               headers={"Authorization": f"Bearer {link.key}"},
                               verify=link.verify)
    except requests.RequestException as exc:
        raise HubUnreachable(type(exc).__name__) from None
    body = _json(answer)
    if answer.status_code >= 500 or answer.status_code in (401, 403):
        raise HubUnreachable(f"{answer.status_code} {body.get('error', '')}")
    if answer.status_code != 200:
        raise ClaimRefused(str(body.get("error", answer.status_code)),
                           str(body.get("reason", "")))
    return body


def sync_claims(db: Database, link: HubLink, session: requests.Session, timeout: float,
                now: Callable[[], float] = time.time) -> int:
    """Mark this venue's vouchers that other venues redeemed through the hub; how many
    claims were new. Raises HubUnreachable when the hub cannot say."""
    seen = db.query_one("SELECT claims_seen FROM hub_state WHERE id = 1")[0]
    claims = _get_claims(link, session, CLAIMS_PATH, seen, timeout)
    if not claims:
        return 0
    with db.write() as conn:
        for claim in claims:
            outcome = vouchers.mark_claimed_elsewhere(
                conn, voucher_id=int(claim["voucher_local_id"]), claim_id=int(claim["id"]),
                mac=str(claim["mac"]), venue=str(claim["venue"]),
                at=float(claim["claimed_at"]), now=now())
            if outcome == "conflict":
                log.warning("voucher %s was redeemed here and at %s: both keep their time"
                            " (the hub lists the conflict)", claim["code"], claim["venue"])
        conn.execute("UPDATE hub_state SET claims_seen = ? WHERE id = 1",
                     (max(int(claim["id"]) for claim in claims),))
    return len(claims)


def _json(answer: requests.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
