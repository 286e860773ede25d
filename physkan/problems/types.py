"""The registry of problem types: ``type = "<name>"`` -> pydantic model of ``[system]``.

Built-in types are registered here; plugins add theirs through
:func:`register_problem_type` (the plugin host calls it at the first lookup in any
registry). The data maker, objective and discovery strategy of a type live in their own
registries (:mod:`physkan.problems.datasets`, :mod:`physkan.train.objectives`,
:mod:`physkan.strategies.base`).
"""

from __future__ import annotations

import re

from physkan.registry import BUILTIN, Registry

from .hamiltonian_system import HamiltonianSystem
from .systems import (
    ConservationSystem,
    LagrangianSystem,
    MetricSystem,
    RegressionSystem,
    SystemBase,
)

__all__ = ["BUILTIN_TYPES", "PROBLEM_TYPES", "register_problem_type"]

#: problem type name -> pydantic model of its ``[system]`` table.
PROBLEM_TYPES: Registry[type[SystemBase]] = Registry("problem type")


def register_problem_type(
    name: str, system_model: type[SystemBase], *, source: str = BUILTIN, replace: bool = True
) -> None:
    """Make ``type = name`` valid; its ``[system]`` table is validated by ``system_model``.

    Re-registering a name replaces the previous model (``replace=False``, as the plugin
    host passes, refuses it with :class:`~physkan.registry.NameClash`); a plugin never
    replaces a built-in type.

    Raises:
        TypeError: ``system_model`` does not subclass :class:`SystemBase`.
        ValueError: ``name`` is not lowercase letters, digits, ``_`` and ``-``.
    """
    if not isinstance(system_model, type) or not issubclass(system_model, SystemBase):
        raise TypeError(
            f"problem type {name!r}: system model must subclass physkan.problems.SystemBase, "
            f"got {system_model!r}"
        )
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
        raise ValueError(f"problem type name {name!r} must be lowercase, e.g. 'kepler'")
    PROBLEM_TYPES.register(name, system_model, source=source, replace=replace)


register_problem_type("regression", RegressionSystem)
register_problem_type("lagrangian", LagrangianSystem)
register_problem_type("conservation", ConservationSystem)
register_problem_type("metric", MetricSystem)
register_problem_type("hamiltonian", HamiltonianSystem)

#: the problem types shipped with physkan, in registration order.
BUILTIN_TYPES: tuple[str, ...] = ("regression", "lagrangian", "conservation", "metric", "hamiltonian")
