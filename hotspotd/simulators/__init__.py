"""hotspotd.simulators"""
