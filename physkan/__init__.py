"""physkan: discover physics with Kolmogorov-Arnold Networks.

The public API is small; everything else lives in subpackages (``physkan.kan``,
``physkan.symbolic``, ``physkan.physics``, ``physkan.problems``, ``physkan.train``,
``physkan.interpret``, ``physkan.zoo``, ``physkan.plugins``, ``physkan.s2kan``).

This module is the composition root: before anything else it installs the plugin loader
(:func:`physkan.plugins.manager.load_plugins`) with :func:`physkan.registry.add_loader`, so
the plugins fill the core registries once, at the first lookup in any of them. Core
packages never import :mod:`physkan.plugins` themselves.
"""

from physkan import registry as _registry


def _load_plugins() -> None:
    """The registry loader: load the plugins and register their contributions (once)."""
    from physkan.plugins.manager import load_plugins

    load_plugins()


_registry.add_loader(_load_plugins)

from physkan._version import __version__  # noqa: E402 - the loader must be installed first
from physkan.discover import discover  # noqa: E402 - the function shadows the module name
from physkan.io import load_model, save_model  # noqa: E402
from physkan.kan import (  # noqa: E402
    KAN,
    KANLayer,
    MultKAN,
    available_basis_families,
    register_basis_family,
)
from physkan.s2kan import S2KAN  # noqa: E402
from physkan.symbolic import auto_symbolic, fix_symbolic, kanpiler, model_formula  # noqa: E402


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
