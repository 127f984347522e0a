"""Run-time data: portal/, radius/ and config/ are mapped here by setup.cfg."""
