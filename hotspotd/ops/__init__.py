"""Running as an appliance: systemd notify/watchdog, health, metrics, alerts, backups, privacy."""
