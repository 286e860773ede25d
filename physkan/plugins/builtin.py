"""physkan's own contributions, registered through the same hooks as third-party plugins.

Loaded first by the manager under the name ``physkan``, so built-ins win every name clash.
"""

from __future__ import annotations

from collections.abc import Sequence

from .hookspecs import ProblemRecord, ProblemTypeRecord, SymbolicLibraryRecord, hookimpl

__all__ = [
    "physkan_basis_families",
    "physkan_problem_types",
    "physkan_problems",
    "physkan_symbolic_libraries",
]


@hookimpl
def physkan_basis_families() -> Sequence[object]:
    """The B-spline and Gaussian RBF families of :mod:`physkan.kan.basis`."""
    from physkan.kan.basis import BSplineBasis, GaussianRBFBasis, get_basis_family

    return [get_basis_family(cls.name) for cls in (BSplineBasis, GaussianRBFBasis)]


@hookimpl
def physkan_symbolic_libraries() -> Sequence[SymbolicLibraryRecord]:
    """The built-in symbolic library of :mod:`physkan.symbolic.library`."""
    from physkan.symbolic.library import BUILTIN_SYMBOLIC, get_symbolic

    return [SymbolicLibraryRecord(functions=[get_symbolic(n) for n in BUILTIN_SYMBOLIC])]


@hookimpl
def physkan_problem_types() -> Sequence[ProblemTypeRecord]:
    """The built-in problem types (regression, lagrangian, conservation, metric)."""
    from physkan.problems.types import BUILTIN_TYPES, PROBLEM_TYPES

    return [ProblemTypeRecord(name=n, system_model=PROBLEM_TYPES.get(n)) for n in BUILTIN_TYPES]


@hookimpl
def physkan_problems() -> Sequence[ProblemRecord]:
    """The problem files shipped in ``physkan/problems/builtin``."""
    from physkan.problems.catalog import builtin_files

    return [ProblemRecord(path.stem, path) for path in builtin_files()]
