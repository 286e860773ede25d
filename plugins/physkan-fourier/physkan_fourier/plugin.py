"""physkan hook implementations of physkan-fourier (entry point ``fourier``)."""

from __future__ import annotations

from physkan.kan.basis import BasisFamily
from physkan.plugins import hookimpl

from .basis import FourierBasis


@hookimpl
def physkan_basis_families() -> list[BasisFamily]:
    """The ``fourier`` basis family."""
    return [FourierBasis()]
