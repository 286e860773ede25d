"""physkan-special: J0, erf, sinc and softplus for physkan's symbolic library."""

from __future__ import annotations

from .functions import SPECIAL_FUNCTIONS, special_library

__all__ = ["SPECIAL_FUNCTIONS", "special_library"]
__version__ = "0.1.0"
