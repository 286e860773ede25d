"""KAN core: basis families, layers, networks, grids and regularisation."""

from physkan.kan.basis import (
    BASIS_FAMILIES,
    BasisFamily,
    BSplineBasis,
    GaussianRBFBasis,
    UnknownBasisError,
    available_basis_families,
    get_basis_family,
    register_basis_family,
)
from physkan.kan.layer import KANLayer
from physkan.kan.network import KAN, Activations, MultKAN, parse_width

__all__ = [
    "BASIS_FAMILIES",
    "Activations",
    "BSplineBasis",
    "BasisFamily",
    "GaussianRBFBasis",
    "KAN",
    "KANLayer",
    "MultKAN",
    "UnknownBasisError",
    "available_basis_families",
    "get_basis_family",
    "parse_width",
    "register_basis_family",
]
