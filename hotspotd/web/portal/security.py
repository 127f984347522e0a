"""Protection for the forms customers POST, and compression of what the portal sends.

CSRF: a random token in an HttpOnly, SameSite=Lax cookie; each form carries an HMAC of it
keyed by a secret derived from the daemon's own (`WebContext.portal_secret`). Another site
can neither read the cookie nor compute the HMAC, so it cannot post a form in the
customer's name. A missing or wrong token re-renders the page with a fresh one.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import secrets

from flask import Request, Response, g, request

COOKIE = "hs_csrf"
FIELD = "csrf"
COMPRESSIBLE = ("text/html", "text/css", "application/javascript", "application/json",
                "text/javascript", "application/captive+json")
MIN_COMPRESS_BYTES = 512


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"hotspotd portal csrf", hashlib.sha256).digest()


def _sign(secret: str, cookie_value: str) -> str:
    return hmac.new(_key(secret), cookie_value.encode(), hashlib.sha256).hexdigest()[:32]


def csrf_token(secret: str) -> str:
    """The token to put in this response's forms (setting the cookie if it is new)."""
    cookie_value = request.cookies.get(COOKIE, "")
    if len(cookie_value) < 16:
        cookie_value = getattr(g, "new_csrf_cookie", "") or secrets.token_urlsafe(18)
        g.new_csrf_cookie = cookie_value
    return _sign(secret, cookie_value)


def csrf_valid(secret: str, req: Request) -> bool:
    cookie_value = req.cookies.get(COOKIE, "")
    sent = req.form.get(FIELD, "")
    if len(cookie_value) < 16 or not sent:
        return False
    return hmac.compare_digest(_sign(secret, cookie_value), sent)


def finish_response(response: Response) -> Response:
    """after_request: set a new CSRF cookie if one was made, then gzip when worth it."""
    new_cookie = getattr(g, "new_csrf_cookie", "")
    if new_cookie:
        response.set_cookie(COOKIE, new_cookie, httponly=True, samesite="Lax",
                            max_age=30 * 24 * 3600)
    return compress(response)


def compress(response: Response) -> Response:
    """gzip a text response when the client accepts it (the first view must stay small)."""
    if (response.direct_passthrough or response.status_code < 200
            or "Content-Encoding" in response.headers
            or "gzip" not in request.headers.get("Accept-Encoding", "")
            or (response.mimetype or "") not in COMPRESSIBLE):
        return response
    body = response.get_data()
    if len(body) < MIN_COMPRESS_BYTES:
        return response
    response.set_data(gzip.compress(body, compresslevel=6))
    response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding, Cookie"
    return response
