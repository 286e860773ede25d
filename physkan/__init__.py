"""physkan: discover physics with Kolmogorov-Arnold Networks.

The public API is small; everything else lives in subpackages.
"""

from physkan.kan import KAN, KANLayer, MultKAN, available_basis_families, register_basis_family

__version__ = "0.1.0"

__all__ = [
    "KAN",
    "KANLayer",
    "MultKAN",
    "__version__",
    "available_basis_families",
    "register_basis_family",
]
