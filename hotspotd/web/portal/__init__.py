"""The captive portal: plans and the phone form, a live status page, vouchers, recovery.

Works without JavaScript (plain form POSTs, then a page that refreshes itself); a little
inline JavaScript validates the phone number as it is typed, remembers it on the device,
and follows the payment live (long poll) instead of refreshing. Every page is served by the
appliance itself, compressed, with nothing fetched from another host.
"""

from __future__ import annotations

from flask import Blueprint

from hotspotd.router.placement import NotPlaced
from hotspotd.web.portal import common, other_ways, pages

blueprint = Blueprint("portal", __name__)
blueprint.after_request(common.after_request)
blueprint.register_error_handler(NotPlaced, common.not_placed)
pages.register(blueprint)
other_ways.register(blueprint)

__all__ = ["blueprint"]
