"""physkan: discover physics with Kolmogorov-Arnold Networks.

The public API is small; everything else lives in subpackages (``physkan.kan``,
``physkan.symbolic``, ``physkan.physics``, ``physkan.problems``, ``physkan.train``,
``physkan.interpret``, ``physkan.zoo``, ``physkan.plugins``, ``physkan.s2kan``).
"""

from physkan.discover import discover  # the function shadows the module name on purpose
from physkan.io import load_model, save_model
from physkan.kan import KAN, KANLayer, MultKAN, available_basis_families, register_basis_family
from physkan.s2kan import S2KAN
from physkan.symbolic import auto_symbolic, fix_symbolic, kanpiler, model_formula

__version__ = "0.1.0"


def __getattr__(name: str):  # S2KAN training loads the Lightning engine: only on first use
    if name in ("s2kan_discover", "train_s2kan"):
        import physkan.s2kan

        return getattr(physkan.s2kan, name)
    raise AttributeError(f"module 'physkan' has no attribute {name!r}")


__all__ = [
    "KAN",
    "KANLayer",
    "MultKAN",
    "S2KAN",
    "__version__",
    "auto_symbolic",
    "available_basis_families",
    "discover",
    "fix_symbolic",
    "kanpiler",
    "load_model",
    "model_formula",
    "register_basis_family",
    "s2kan_discover",
    "save_model",
    "train_s2kan",
]
