"""physkan's plugin system (pluggy, entry-point group ``physkan``).

Third-party packages extend physkan with basis families, symbolic functions, problem types,
named problems and CLI commands. See ``docs/plugins.md`` and :mod:`physkan.plugins.hookspecs`.

>>> from physkan.plugins import hookimpl
>>> @hookimpl
... def physkan_problems():
...     return {"my-problem": "/path/to/my-problem.toml"}

This module stays import-light; the manager lives in :mod:`physkan.plugins.manager`,
:class:`LazyCommand` (a command imported only when it runs) in :mod:`physkan.plugins.commands`.
"""

from __future__ import annotations

from .hookspecs import (
    PROJECT_NAME,
    ProblemRecord,
    ProblemTypeRecord,
    SymbolicLibraryRecord,
    hookimpl,
    hookspec,
)

__all__ = [
    "PROJECT_NAME",
    "LazyCommand",
    "ProblemRecord",
    "ProblemTypeRecord",
    "SymbolicLibraryRecord",
    "hookimpl",
    "hookspec",
]


def __getattr__(name: str) -> object:
    """:class:`~physkan.plugins.commands.LazyCommand` on first use (click stays unimported)."""
    if name == "LazyCommand":
        from .commands import LazyCommand

        return LazyCommand
    raise AttributeError(f"module 'physkan.plugins' has no attribute {name!r}")
