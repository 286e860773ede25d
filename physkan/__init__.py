"""physkan: discover physics with Kolmogorov-Arnold Networks.

The public API is small; everything else lives in subpackages (``physkan.kan``,
``physkan.symbolic``, ``physkan.physics``, ``physkan.problems``, ``physkan.train``,
``physkan.interpret``, ``physkan.zoo``, ``physkan.plugins``).
"""

from physkan.discover import discover  # the function shadows the module name on purpose
from physkan.io import load_model, save_model
from physkan.kan import KAN, KANLayer, MultKAN, available_basis_families, register_basis_family
from physkan.symbolic import auto_symbolic, fix_symbolic, kanpiler, model_formula

__version__ = "0.1.0"


__all__ = [
    "KAN",
    "KANLayer",
    "MultKAN",
    "__version__",
    "auto_symbolic",
    "available_basis_families",
    "discover",
    "fix_symbolic",
    "kanpiler",
    "load_model",
    "model_formula",
    "register_basis_family",
    "save_model",
]
