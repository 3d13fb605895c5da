"""edgewise on-device runtime: models, runtimes, detectors, sources, pipeline, daemon."""

__version__ = "0.1.0"
