"""physkan's plugin system (pluggy, entry-point group ``physkan``).

Third-party packages extend physkan with basis families, symbolic functions, problem types,
named problems and CLI commands. See ``docs/plugins.md`` and :mod:`physkan.plugins.hookspecs`.

>>> from physkan.plugins import hookimpl
>>> @hookimpl
... def physkan_problems():
...     return {"my-problem": "/path/to/my-problem.toml"}

This module stays import-light; the manager lives in :mod:`physkan.plugins.manager`.
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
    "ProblemRecord",
    "ProblemTypeRecord",
    "SymbolicLibraryRecord",
    "hookimpl",
    "hookspec",
]
