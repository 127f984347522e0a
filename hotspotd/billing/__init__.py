"""hotspotd.billing"""
