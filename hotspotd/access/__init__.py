"""RADIUS access decisions: who may log in, for how long, at what rate (answered from an
in-memory view), and voucher logins. `hotspotd.radius` speaks the protocol; this decides."""
