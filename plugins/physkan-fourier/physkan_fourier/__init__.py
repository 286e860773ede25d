"""physkan-fourier: a Fourier-series basis family (``[model] basis = "fourier"``)."""

from __future__ import annotations

from .basis import FourierBasis

__all__ = ["FourierBasis"]
__version__ = "0.1.0"
