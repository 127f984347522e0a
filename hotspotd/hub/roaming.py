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
VOUCHER_REFUSALS: dict[str, Callable[[], vouchers.VoucherError]] = {
    "voucher_used": lambda: vouchers.VoucherUsed("That voucher has already been used."),
    "voucher_expired": lambda: vouchers.VoucherExpired("That voucher has expired."),
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
            raise VOUCHER_REFUSALS.get(refused.code, lambda: vouchers.UnknownVoucher(UNKNOWN))(
            ) from None
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
        try:
            answer = _post(link, TIME_CLAIM_PATH, {"receipt": code, "phone_masked": masked,
                                                   "mac": mac}, self.timeout)
        except HubUnreachable:
            raise recovery.RecoveryRefused(UNCHECKED_TIME) from None
        except ClaimRefused as refused:
            raise TIME_REFUSALS.get(refused.code, lambda: recovery.RecoveryRefused(
                recovery.NO_MATCH))() from None
        moved = recovery.MovedTime(int(answer["claim"]), code, str(answer["home"]),
                                   int(answer["seconds"]))
        return recovery.grant_moved_in(self.db, moved, mac=mac, ip=ip, now=now)


TIME_REFUSALS: dict[str, Callable[[], Exception]] = {
    "time_moved": lambda: recovery.AlreadyRecovered(
        "The time of that payment was already moved to a device; it can move only once."),
    "time_over": lambda: recovery.NothingToRecover(
        "The time bought with that payment has run out; there is nothing left to move."),
}


UNCHECKED_TIME = ("We could not match that receipt here, and the other venues cannot be asked"
                  " right now. Try again in a minute.")


def claim_voucher(link: HubLink, code: str, mac: str, timeout: float) -> dict[str, Any]:
    """Ask the hub for voucher `code` for device `mac`: its answer, or why not."""
    return _post(link, CLAIM_PATH, {"code": code, "mac": mac}, timeout)


def _post(link: HubLink, path: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    """POST a claim to the hub: its answer; HubUnreachable when it cannot answer (no
    connection, a server error, this appliance's key refused); ClaimRefused with the
    hub's word and reason otherwise."""
    try:
        answer = requests.post(link.hub_url.rstrip("/") + path, json=body, timeout=timeout,
                               headers={"Authorization": f"Bearer {link.key}"},
                               verify=link.verify)
    except requests.RequestException as exc:
        raise HubUnreachable(type(exc).__name__) from None
    reply = _json(answer)
    if answer.status_code >= 500 or answer.status_code in (401, 403):
        raise HubUnreachable(f"{answer.status_code} {reply.get('error', '')}")
    if answer.status_code != 200:
        raise ClaimRefused(str(reply.get("error", answer.status_code)),
                           str(reply.get("reason", "")))
    return reply


def sync_claims(db: Database, link: HubLink, session: requests.Session, timeout: float,
                now: Callable[[], float] = time.time) -> int:
    """Mark this venue's vouchers that other venues redeemed through the hub; how many
    claims were new. Raises HubUnreachable when the hub cannot say."""
    def apply(conn: Any, claim: dict[str, Any]) -> None:
        outcome = vouchers.mark_claimed_elsewhere(
            conn, voucher_id=int(claim["voucher_local_id"]), claim_id=int(claim["id"]),
            mac=str(claim["mac"]), venue=str(claim["venue"]),
            at=float(claim["claimed_at"]), now=now())
        if outcome == "conflict":
            log.warning("voucher %s was redeemed here and at %s: both keep their time"
                        " (the hub lists the conflict)", claim["code"], claim["venue"])

    return _apply_claims(db, link, session, timeout, CLAIMS_PATH, "claims_seen", apply)


def sync_time_claims(db: Database, link: HubLink, session: requests.Session, timeout: float,
                     now: Callable[[], float] = time.time) -> int:
    """Take off the paying devices here the time of payments that moved to other venues;
    how many moves were new. Raises HubUnreachable when the hub cannot say."""
    def apply(conn: Any, claim: dict[str, Any]) -> None:
        outcome = recovery.take_moved_away(
            conn, claim_id=int(claim["id"]), payment_id=int(claim["payment_local_id"]),
            seconds=int(claim["seconds"]), venue=str(claim["venue"]), now=now())
        if outcome == "conflict":
            log.warning("the time of receipt %s moved here and to %s: both keep it",
                        claim["receipt"], claim["venue"])

    return _apply_claims(db, link, session, timeout, TIME_CLAIMS_PATH, "time_claims_seen",
                         apply)


SEEN_COLUMNS = ("claims_seen", "time_claims_seen")


def _apply_claims(db: Database, link: HubLink, session: requests.Session, timeout: float,
                  path: str, seen_column: str,
                  apply: Callable[[Any, dict[str, Any]], None]) -> int:
    """The hub's claims at `path` newer than `hub_state.<seen_column>`, each applied here
    and the mark moved past them, in one transaction; how many there were."""
    if seen_column not in SEEN_COLUMNS:
        raise ValueError(seen_column)
    seen = db.query_one(f"SELECT {seen_column} FROM hub_state WHERE id = 1")[0]
    claims = _get_claims(link, session, path, seen, timeout)
    if not claims:
        return 0
    with db.write() as conn:
        for claim in claims:
            apply(conn, claim)
        conn.execute(f"UPDATE hub_state SET {seen_column} = ? WHERE id = 1",
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


def _json(answer: requests.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
