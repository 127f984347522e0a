"""MikroTik simulator: RouterOS API server, hotspot NAS over RADIUS, router pages."""
