"""physkan: discover physics with Kolmogorov-Arnold Networks.

The public API is small; everything else lives in subpackages (``physkan.kan``,
``physkan.symbolic``, ``physkan.physics``, ``physkan.problems``, ``physkan.train``,
``physkan.interpret``, ``physkan.zoo``, ``physkan.plugins``, ``physkan.s2kan``).

This module is the composition root: before anything else it installs the plugin loader
(:func:`physkan.plugins.manager.load_plugins`) with :func:`physkan.registry.add_loader`, so
the plugins fill the core registries once, at the first lookup in any of them. Core
packages never import :mod:`physkan.plugins` themselves. The loader also imports the
modules that register the built-in model kinds, so ``load_model`` knows them.

The public names below are imported on first use (PEP 562 ``__getattr__``): ``import
physkan`` stays light (no torch), which keeps the zoo server at a few tens of MB
(``docs/zoo.md``). ``from physkan import KAN`` works as before.
"""

import importlib
import sys
import types

from physkan import registry as _registry
from physkan._lazy import lazy_exports


def _load_plugins() -> None:
    """The registry loader: load the plugins and register their contributions (once)."""
    from physkan.plugins.manager import load_plugins

    for module in _MODEL_KIND_MODULES:  # built-in model kinds before any plugin's
        importlib.import_module(module)
    load_plugins()


_registry.add_loader(_load_plugins)

from physkan._version import __version__  # noqa: E402 - the loader must be installed first

#: public name -> module it lives in; imported on first use (PEP 562), so ``import physkan``
#: and the light zoo server (``physkan.zoo.server``) never load torch by themselves.
_LAZY = {
    "discover": "physkan.discover",
    "KANRegressor": "physkan.api",
    "fit": "physkan.api",
    "load_model": "physkan.io",
    "save_model": "physkan.io",
    "KAN": "physkan.kan",
    "KANLayer": "physkan.kan",
    "MultKAN": "physkan.kan",
    "available_basis_families": "physkan.kan",
    "register_basis_family": "physkan.kan",
    "S2KAN": "physkan.s2kan",
    "auto_symbolic": "physkan.symbolic",
    "fix_symbolic": "physkan.symbolic",
    "kanpiler": "physkan.symbolic",
    "model_formula": "physkan.symbolic",
    "s2kan_discover": "physkan.s2kan",
    "train_s2kan": "physkan.s2kan",
    "load_trajectory_states": "physkan.problems.trajectories",
    "simulate_trajectories": "physkan.physics.simulate",
}
#: modules whose import registers a built-in model kind (``physkan.io.MODEL_KINDS``)
_MODEL_KIND_MODULES = ("physkan.kan.network", "physkan.s2kan.model")


class _Root(types.ModuleType):
    """The ``physkan`` module: ``physkan.discover`` stays the function.

    Importing the submodule :mod:`physkan.discover` makes Python set the package
    attribute ``discover`` to that module; this keeps the function there instead.
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name == "discover" and isinstance(value, types.ModuleType):
            value = getattr(value, "discover", value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Root


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, relative=False)


__all__ = [
    "KAN",
    "KANLayer",
    "KANRegressor",
    "MultKAN",
    "S2KAN",
    "__version__",
    "auto_symbolic",
    "available_basis_families",
    "discover",
    "fit",
    "fix_symbolic",
    "kanpiler",
    "load_model",
    "load_trajectory_states",
    "model_formula",
    "register_basis_family",
    "s2kan_discover",
    "save_model",
    "simulate_trajectories",
    "train_s2kan",
]
