"""`python -m hotspotd.config` prints the example configuration file."""

import sys

from hotspotd.config.example import render_example

sys.stdout.write(render_example())
