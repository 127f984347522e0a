"""The appliance's shipper: sends the hub journal to the hub, in order, until acknowledged.

One thread. Each round it reads the rows after `hub_state.shipped_seq`, posts them as one
batch and, only when the hub acknowledges, moves `shipped_seq` to the hub's `acked`. A
crash at any instant therefore resends at most one batch, which the hub recognises as a
replay (or an overlap, of which it stores only the new tail): every event reaches the hub
exactly once. A hub that is down or refusing costs only delay: the shipper backs off
(doubling, capped), logs once per change of state, and sleeps on an Event in between, so an
idle appliance wakes every `ship_interval_seconds` and does one indexed SELECT.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from hotspotd.hub import journal, roaming
from hotspotd.hub.link import HubLink, load_link
from hotspotd.hub.protocol import BATCHES_PATH, make_batch
from hotspotd.secretbox import SecretBox
from hotspotd.store.db import Database

log = logging.getLogger(__name__)

STOP_JOIN_SECONDS = 1.0
PRUNE_EVERY_SECONDS = 3600.0


class HubUnavailable(Exception):
    """This round could not ship: the hub is unreachable, failing or refusing (says why)."""


class Shipper:
    """Ships the journal of `db` to the hub it was enrolled with (`hotspotd hub enroll`).

    `settings` is the appliance's `[hub]` config section (ship_interval_seconds,
    health_interval_seconds, batch_events, timeout_seconds, backoff_max_seconds,
    keep_shipped_days); `box` opens the stored appliance key; `clock` gives epoch seconds.
    """

    def __init__(self, settings: Any, db: Database, box: SecretBox,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings, self.db, self.box, self.clock = settings, db, box, clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._http = requests.Session()
        self.failed_rounds = 0  # rounds that could not ship, since the start
        self._state = "starting"
        self._backoff = 0.0
        self._next_health = 0.0
        self._next_prune = 0.0

    def start(self) -> Shipper:
        link = load_link(self.db, self.box)
        if link is None:
            raise HubUnavailable("[hub] enabled but this appliance is not enrolled: run"
                                 " `hotspotd hub enroll --hub-url URL --token TOKEN`")
        log.info("shipping the ledger to hub %s as appliance %s", link.hub_url,
                 link.appliance_id)
        self._thread = threading.Thread(target=self._run, name="hub-shipper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop within a second. A batch in flight is abandoned: its ack was not recorded,
        so the next start resends it and the hub answers it as a replay."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(STOP_JOIN_SECONDS)
        self._http.close()

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Ship now rather than at the next interval (e.g. right after a payment settles)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:  # the link is read each round: a re-enrolment applies without a restart
                link = load_link(self.db, self.box)
                if link is None:
                    raise HubUnavailable("this appliance is no longer enrolled")
                backlog = self.round(link)
            except HubUnavailable as exc:
                self.failed_rounds += 1
                self._set_state(f"failing: {exc}", logging.WARNING)
                self._backoff = min(max(1.0, self._backoff * 2),
                                    float(self.settings.backoff_max_seconds))
                delay = self._backoff
            except Exception:  # a bug must not kill shipping for good; it retries later
                if self._stop.is_set():
                    return
                log.exception("hub shipper round failed")
                delay = float(self.settings.backoff_max_seconds)
            else:
                self._set_state("shipping", logging.INFO)
                self._backoff = 0.0
                delay = 0.0 if backlog else float(self.settings.ship_interval_seconds)
            self._wake.wait(delay)
            self._wake.clear()

    def round(self, link: HubLink) -> bool:
        """Health row if due, one batch if any, then the roaming claims on this venue's
        vouchers and payments; True when more rows wait behind the batch. The ledger goes
        first: claims that cannot be read never hold up the stream."""
        now = self.clock()
        if now >= self._next_health:
            journal.append_health(self.db, now)
            self._next_health = now + self.settings.health_interval_seconds
        if now >= self._next_prune:
            journal.prune_shipped(self.db, now - self.settings.keep_shipped_days * 86400)
            self._next_prune = now + PRUNE_EVERY_SECONDS
        after = journal.shipped_seq(self.db)
        events = journal.pending_events(self.db, after, int(self.settings.batch_events))
        if events:
            self.send(link, events)
        try:  # this venue's vouchers and time used at other venues: used here too
            timeout = float(self.settings.timeout_seconds)
            roaming.sync_claims(self.db, link, self._http, timeout, self.clock)
            roaming.sync_time_claims(self.db, link, self._http, timeout, self.clock)
        except roaming.HubUnreachable as exc:
            journal.record_error(self.db, str(exc))
            raise HubUnavailable(f"cannot read roaming claims: {exc}") from None
        return len(events) >= int(self.settings.batch_events)

    def send(self, link: HubLink, events: list[dict[str, Any]]) -> None:
        """Post one batch and act on the hub's answer (ack, gap or refusal)."""
        status, body = self._post(link, make_batch(link.appliance_id, events))
        if status == 200:
            acked = int(body["acked"])
            if acked > journal.newest_seq(self.db):
                moved = journal.renumber_after(self.db, acked)
                log.error("the hub holds events up to %s, more than this appliance ever"
                          " numbered (its database restored from a backup?): %s unshipped"
                          " events renumbered after it", acked, moved)
                return
            journal.record_ack(self.db, acked, self.clock())
        elif status == 409 and body.get("error") == "diverged":
            moved = journal.renumber_after(self.db, int(body["acked"]))
            log.error("the hub holds other events under this appliance's seqs (its database"
                      " restored from a backup?): %s unshipped events renumbered after %s",
                      moved, body["acked"])
        elif status == 409 and body.get("error") == "gap":
            acked = int(body["acked"])
            if not journal.rewind_to(self.db, acked):
                raise HubUnavailable(f"the hub has events only up to {acked} and this"
                                     " appliance no longer keeps the ones after it")
            log.warning("the hub asked to resend from %s", acked + 1)
        else:
            reason = f"{status} {body.get('error', '')}: {body.get('reason', '')}".strip()
            journal.record_error(self.db, reason)
            raise HubUnavailable(f"the hub refused the batch ({reason})")

    def _post(self, link: HubLink, batch: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            answer = self._http.post(link.hub_url.rstrip("/") + BATCHES_PATH, json=batch,
                                     headers={"Authorization": f"Bearer {link.key}"},
                                     timeout=float(self.settings.timeout_seconds),
                                     verify=link.verify)
        except requests.RequestException as exc:
            journal.record_error(self.db, f"hub unreachable: {type(exc).__name__}")
            raise HubUnavailable(f"cannot reach the hub: {type(exc).__name__}") from None
        try:
            body = answer.json()
        except ValueError:
            body = {}
        if answer.status_code >= 500:
            journal.record_error(self.db, f"hub error {answer.status_code}")
            raise HubUnavailable(f"the hub answered {answer.status_code}")
        return answer.status_code, body if isinstance(body, dict) else {}

    def _set_state(self, state: str, level: int) -> None:
        if state != self._state:
            log.log(level, "hub shipper: %s", state)
            self._state = state
