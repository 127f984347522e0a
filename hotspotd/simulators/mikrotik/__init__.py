"""MikroTik simulator: RouterOS API server, hotspot NAS over RADIUS, router pages."""

from .simulator import MikrotikSimulator

__all__ = ["MikrotikSimulator"]
