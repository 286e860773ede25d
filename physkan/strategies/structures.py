"""Extra structure tries of the regression strategy, and its exactness tolerance.

The regression strategy (:mod:`physkan.strategies.regression`) tries candidate structures
from the simplest up. Other modules add their own *structure tries* here with
:func:`register_structure_try`: a function ``run(spec, data, say) -> sympy.Expr | None``
that returns a closed-form formula for the (single) output, or ``None`` when its structure
does not apply. The regression strategy runs each one at its place in the order (``after``
one of the built-in kinds, see :data:`KINDS`), measures the formula on held-out data, offers
it to the Pareto front and stops at the first exact one, as for its own structures.

A try must respect :func:`physkan.budget.current_budget` (return early, with its best
formula or ``None``, once it has expired).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sympy

from physkan.strategies.base import Reporter

if TYPE_CHECKING:  # pragma: no cover - typing only
    from physkan.problems import Dataset, ProblemSpec

__all__ = [
    "EXACT_REL_RMSE",
    "KINDS",
    "STRUCTURE_TRIES",
    "StructureTry",
    "exact_rel_tolerance",
    "register_structure_try",
]

#: Relative (to ``std(y)``) test RMSE below which a symbolic formula counts as an exact fit
#: on noise-free data.
EXACT_REL_RMSE = 1e-6

#: The built-in structure kinds of the regression search, in their order; a try runs right
#: after the kind it names (``"start"``: before all of them).
KINDS = ("start", "product", "log-additive", "block", "additive", "inner-sum", "width")

#: ``run(spec, data, say) -> formula or None``.
StructureRun = Callable[["ProblemSpec", "Dataset", Reporter], "sympy.Expr | None"]


@dataclass(frozen=True)
class StructureTry:
    """A registered structure try: ``label`` (shown in progress and ``symbolic_report``),
    ``run`` and the built-in kind it follows (``after``)."""

    label: str
    run: StructureRun
    after: str = "product"


#: The registered tries, in registration order.
STRUCTURE_TRIES: list[StructureTry] = []


def register_structure_try(label: str, run: StructureRun, *, after: str = "product") -> None:
    """Add a structure try to the regression search (replacing one with the same label).

    Raises:
        ValueError: ``after`` is not one of :data:`KINDS`.
    """
    if after not in KINDS:
        raise ValueError(f"after: must be one of {', '.join(KINDS)}, got {after!r}")
    STRUCTURE_TRIES[:] = [t for t in STRUCTURE_TRIES if t.label != label]
    STRUCTURE_TRIES.append(StructureTry(label, run, after))


def exact_rel_tolerance(noise: float) -> float:
    """Relative test RMSE under which a formula counts as exact: :data:`EXACT_REL_RMSE` on
    clean data, the noise level (fraction of ``std(y)``, ``[data].noise``) on noisy data
    (constants fitted to noisy samples are off by about ``noise/sqrt(n)`` each)."""
    return max(EXACT_REL_RMSE, float(noise))
