"""The operator's hub and what talks to it.

Hub side (`hotspotd hub serve`, on PostgreSQL): server, web, ingest, projections, claims,
dashboard, owners, enrolment, pgstore, config. Appliance side (inside `hotspotd run`):
journal, shipper, link, roaming. Both speak `protocol`. docs/HUB.md describes the whole.
"""
