"""physkan's version string (the bottom layer: imports nothing, safe for the light zoo server)."""

__version__ = "0.1.0"
