"""Numeric implementations of sympy functions contributed by plugins.

``sympy.lambdify(..., modules="numpy")`` cannot evaluate e.g. ``erf`` or ``besselj`` on
arrays. Plugins list numpy versions in :attr:`SymbolicLibraryRecord.numpy_functions`; the
manager puts them in :data:`NUMPY_FUNCTIONS`, which physkan's numpy evaluators pass to
lambdify ahead of ``"numpy"`` (an empty dict changes nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["NUMPY_FUNCTIONS", "numpy_modules"]

#: printed sympy function name -> numpy implementation (filled by plugins).
NUMPY_FUNCTIONS: dict[str, Callable[..., Any]] = {}


def numpy_modules() -> list[Any]:
    """The ``modules`` argument for ``sympy.lambdify``: plugin functions, then numpy."""
    return [NUMPY_FUNCTIONS, "numpy"]
