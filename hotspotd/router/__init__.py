"""Talking to the MikroTik router: RouterOS API gateway and the router outbox."""
