"""physkan-kepler: the ``kepler`` problem type (central-force orbits) for physkan."""

from __future__ import annotations

from .strategy import discover_kepler
from .system import KeplerSystem, make_kepler_dataset

__all__ = ["KeplerSystem", "discover_kepler", "make_kepler_dataset"]
__version__ = "0.1.0"
