"""The venue owner's side: accounts, login sessions, CSRF, audit log, reports, actions.

The HTTP layer lives in `hotspotd.web.admin`; everything here works on the Database and
raises typed errors (AdminError) that the blueprint turns into words.
"""
