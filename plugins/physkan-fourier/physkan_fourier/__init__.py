"""physkan-fourier: a Fourier-series basis family (``[model] basis = "fourier"``)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .basis import FourierBasis

__all__ = ["FourierBasis"]
__version__ = "0.1.0"

#: public name -> submodule; imported on first use (PEP 562), so the entry-point module
#: (``.plugin``) imports neither torch nor physkan's heavy layers: ``physkan --help``,
#: ``physkan problems`` and ``physkan plugins`` stay fast with this plugin installed.
_LAZY = {"FourierBasis": "basis"}


def __getattr__(name: str) -> object:
    """Import a public name's submodule on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
