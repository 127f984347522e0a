"""hotspotd.router"""
