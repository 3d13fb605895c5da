"""``edge demo``: a broker, the hub and a daemon on sample media, in one command."""
