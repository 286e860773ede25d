"""Lazy public names for a package (PEP 562), so importing it stays light (no torch).

A package lists ``{public name: module}`` and installs the two module hooks::

    __getattr__, __dir__ = lazy_exports(__name__, _LAZY)

This module imports nothing from physkan.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, table: Mapping[str, str], *, relative: bool = True
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` hooks of ``package`` for the names of ``table``.

    Args:
        package: the package's ``__name__``; its module globals cache each name on first use.
        table: public name -> the module that defines it: a submodule name of ``package``
            (``relative=True``) or an absolute module name (``relative=False``).
    """
    namespace = importlib.import_module(package).__dict__
    prefix = f"{package}." if relative else ""

    def __getattr__(name: str) -> object:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(prefix + module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
