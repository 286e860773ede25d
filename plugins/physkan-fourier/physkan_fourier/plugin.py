"""physkan hook implementations of physkan-fourier (entry point ``fourier``).

Light at import (torch is imported by the hook, not here), so listing commands stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from physkan.plugins import hookimpl

if TYPE_CHECKING:  # pragma: no cover - typing only
    from physkan.kan.basis import BasisFamily


@hookimpl
def physkan_basis_families() -> list[BasisFamily]:
    """The ``fourier`` basis family."""
    from .basis import FourierBasis

    return [FourierBasis()]
