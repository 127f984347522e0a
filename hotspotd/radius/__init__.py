"""RADIUS: the dictionary shipped in `radius/`, the server the router talks to."""
