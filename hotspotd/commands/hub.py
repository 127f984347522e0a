"""`hotspotd hub`: the operator's hub (serve, enroll a venue, revoke, owner) and the
appliance's side of it (enroll with a token, ship the journal, status).

`hub enroll` works on both sides: with `--venue` it runs at the hub (hub.toml) and prints a
one-time token; with `--hub-url` and `--token` it runs on the appliance (its own config)
and stores the key it gets back, encrypted. docs/HUB.md walks through both.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from hotspotd import __version__
from hotspotd.commands.common import add_config_argument, fail
from hotspotd.config import ConfigError, load_config

NAME = "hub"
HELP = "the operator's hub (PostgreSQL) and this appliance's link to it"

log = logging.getLogger("hotspotd.hub")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="hub_action", required=True, metavar="ACTION")
    serve = actions.add_parser("serve", help="run the hub (config: hub.toml)")
    add_config_argument(serve)
    enroll = actions.add_parser(
        "enroll", help="at the hub: --venue NAME prints a one-time token; on an appliance:"
        " --hub-url URL --token TOKEN enrols it")
    add_config_argument(enroll)
    enroll.add_argument("--venue", help="(hub) the venue's name")
    enroll.add_argument("--network", help="(hub) the network (venue group) it belongs to")
    enroll.add_argument("--hub-url", help="(appliance) the hub's https:// address")
    enroll.add_argument("--token", help="(appliance) the token the operator gave you")
    enroll.add_argument("--ca-file", help="(appliance) PEM file to verify the hub's"
                        " certificate against (a self-signed hub)")
    revoke = actions.add_parser("revoke", help="refuse a venue's key from now on (hub)")
    add_config_argument(revoke)
    revoke.add_argument("--venue", required=True)
    revoke.add_argument("--reason", default="")
    owner = actions.add_parser("owner", help="create an owner account of the hub's UI;"
                               " the password is read from stdin")
    add_config_argument(owner)
    owner.add_argument("--username", required=True)
    ship = actions.add_parser("ship", help="run only the appliance's shipper (normally"
                              " `hotspotd run` does, with [hub] enabled = true)")
    add_config_argument(ship)
    status = actions.add_parser("status", help="where this appliance's shipping stands")
    add_config_argument(status)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers = {"serve": _serve, "revoke": _revoke, "owner": _owner, "ship": _ship,
                "status": _status,
                "enroll": _enroll_venue if getattr(args, "venue", None) else _enroll_appliance}
    from hotspotd.hub.enrolment import HubCommandError
    from hotspotd.hub.link import EnrolmentError
    from hotspotd.hub.pgstore import HubStoreError
    from hotspotd.secretbox import SecretBoxError
    try:
        return handlers[args.hub_action](args)
    except (ConfigError, HubStoreError, HubCommandError, EnrolmentError, SecretBoxError,
            OSError) as exc:
        return fail(exc)


def _wait_for_signal() -> None:
    """Block until SIGTERM or SIGINT (no polling: the main thread sleeps on an Event)."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(3600):
        pass


# --- the hub's side -------------------------------------------------------------------------


def _open_hub(args: argparse.Namespace):  # noqa: ANN202 (imports kept lazy)
    from hotspotd.hub.config import load_hub_config
    from hotspotd.hub.pgstore import HubStore

    config = load_hub_config(args.config)
    logging.getLogger().setLevel(config.log_level.upper())
    return config, HubStore(config.dsn).open()


def _serve(args: argparse.Namespace) -> int:
    from hotspotd.hub.server import HubListener, sd_notify, tls_context
    from hotspotd.hub.web import create_hub_app

    config, store = _open_hub(args)
    log.info("hotspotd hub %s starting with %s", __version__, args.config)
    context = None if config.insecure_http else tls_context(config.tls_cert_file,
                                                            config.tls_key_file)
    if context is None:
        log.warning("hub serving plain HTTP on %s (insecure_http): keep it behind a TLS"
                    " proxy on this machine", config.host)
    app = create_hub_app(store, config, secure_cookies=context is not None)
    listener = HubListener(app, config.host, config.port, threads=config.threads,
                           context=context).start()
    print(f"hotspotd hub: serving {listener.url}", file=sys.stderr, flush=True)
    sd_notify(f"READY=1\nSTATUS=serving {listener.url}")
    _wait_for_signal()
    sd_notify("STOPPING=1")
    listener.stop()
    store.close()
    log.info("hotspotd hub stopped")
    return 0


def _enroll_venue(args: argparse.Namespace) -> int:
    from hotspotd.hub.enrolment import create_venue

    _, store = _open_hub(args)
    token = create_venue(store, args.venue, args.network)
    store.close()
    print(f"Enrolment token for {args.venue!r} (valid 24 hours, usable once):")
    print(token)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from hotspotd.hub.enrolment import revoke

    _, store = _open_hub(args)
    appliance_id = revoke(store, args.venue, args.reason)
    store.close()
    print(f"venue {args.venue!r} (appliance {appliance_id}) revoked: its key is refused")
    return 0


def _owner(args: argparse.Namespace) -> int:
    from hotspotd.hub.owners import create_owner

    _, store = _open_hub(args)
    password = sys.stdin.readline().rstrip("\n")
    create_owner(store, args.username, password)
    store.close()
    print(f"owner account {args.username!r} ready")
    return 0


# --- the appliance's side --------------------------------------------------------------------


def _open_appliance(args: argparse.Namespace):  # noqa: ANN202 (imports kept lazy)
    from hotspotd.secretbox import SecretBox
    from hotspotd.store.db import Database

    config = load_config(args.config)
    db = Database(config.database.path).open()
    return config, db, SecretBox.from_key_file(Path(config.security.key_file))


def _enroll_appliance(args: argparse.Namespace) -> int:
    from hotspotd.hub.link import enrol_appliance

    if not args.hub_url or not args.token:
        return fail("hub enroll: give --venue (at the hub) or --hub-url and --token"
                    " (on the appliance)")
    _, db, box = _open_appliance(args)
    link = enrol_appliance(db, box, args.hub_url, args.token, args.ca_file)
    db.close()
    print(f"enrolled with {link.hub_url} as appliance {link.appliance_id}; set [hub]"
          " enabled = true (or run `hotspotd hub ship`) to start shipping")
    return 0


def _ship(args: argparse.Namespace) -> int:
    from hotspotd.hub.shipper import HubUnavailable, Shipper

    config, db, box = _open_appliance(args)
    try:
        shipper = Shipper(config.hub, db, box).start()
    except HubUnavailable as exc:
        db.close()
        return fail(exc)
    _wait_for_signal()
    shipper.stop()
    db.close()
    return 0


def _status(args: argparse.Namespace) -> int:
    _, db, _box = _open_appliance(args)
    state = db.query_one("SELECT * FROM hub_state WHERE id = 1")
    waiting = db.query_one("SELECT COUNT(*) FROM hub_journal WHERE seq > ?",
                           (state["shipped_seq"],))[0]
    db.close()
    last_ok = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(state["last_ok_at"]))
               if state["last_ok_at"] else "never")
    print(f"hub: {state['hub_url'] or 'not enrolled'} (appliance {state['appliance_id']})")
    print(f"shipped up to seq {state['shipped_seq']}; {waiting} events waiting;"
          f" last acknowledged {last_ok}")
    if state["last_error"]:
        print(f"last error: {state['last_error']}")
    return 0
