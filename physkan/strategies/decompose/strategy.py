"""The decomposition as a structure try of the regression strategy (see
:mod:`physkan.strategies.structures`): ``run(spec, data, say) -> formula | None``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import sympy

from physkan.budget import current_budget
from physkan.strategies.base import Reporter
from physkan.strategies.decompose.recurse import decompose_regression
from physkan.strategies.structures import exact_rel_tolerance

if TYPE_CHECKING:  # pragma: no cover - typing only
    from physkan.problems import Dataset, ProblemSpec

__all__ = ["MAX_SECONDS", "decompose_formula"]

#: At most this many seconds (and 60% of the budget left) go to the decomposition.
MAX_SECONDS = 120.0


def decompose_formula(spec: ProblemSpec, data: Dataset, say: Reporter) -> sympy.Expr | None:
    """KAN-guided recursive decomposition of the single output on the training data,
    checked on the test data; ``None`` when it finds no law within its time."""
    if len(data.outputs) != 1 or len(data.inputs) < 2:
        return None
    left = current_budget().remaining()
    seconds = MAX_SECONDS if math.isinf(left) else min(MAX_SECONDS, 0.6 * left)
    if seconds < 1.0:
        return None
    say(f"recursive decomposition with a KAN surrogate (up to {seconds:.0f} s)")
    return decompose_regression(
        data.x_train, data.y_train[:, 0], data.inputs, x_test=data.x_test, y_test=data.y_test[:, 0],
        seconds=seconds, tol=exact_rel_tolerance(spec.data.noise),
    )  # fmt: skip
