"""hotspotd.web"""
