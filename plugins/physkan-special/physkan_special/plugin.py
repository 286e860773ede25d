"""physkan hook implementations of physkan-special (entry point ``special``)."""

from __future__ import annotations

from physkan.plugins import SymbolicLibraryRecord, hookimpl

from .functions import special_library


@hookimpl
def physkan_symbolic_libraries() -> list[SymbolicLibraryRecord]:
    """J0, erf, sinc and softplus with their sympy forms."""
    return [special_library()]
