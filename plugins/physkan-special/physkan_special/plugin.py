"""physkan hook implementations of physkan-special (entry point ``special``).

Light at import (torch and sympy are imported by the hook, not here).
"""

from __future__ import annotations

from physkan.plugins import SymbolicLibraryRecord, hookimpl


@hookimpl
def physkan_symbolic_libraries() -> list[SymbolicLibraryRecord]:
    """J0, erf, sinc and softplus with their sympy forms."""
    from .functions import special_library

    return [special_library()]
