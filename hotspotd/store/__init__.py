"""hotspotd.store"""
