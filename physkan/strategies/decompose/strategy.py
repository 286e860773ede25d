"""The decomposition as a structure try of the regression strategy (see
:mod:`physkan.strategies.structures`): ``run(spec, data, say) -> formula | None``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import sympy

from physkan.budget import current_budget
from physkan.strategies.base import Reporter
from physkan.strategies.decompose.cheap import cheap_candidates
from physkan.strategies.decompose.recurse import decompose_regression, fits_held_out
from physkan.strategies.structures import STRUCTURE_TRIES, exact_rel_tolerance

if TYPE_CHECKING:  # pragma: no cover - typing only
    from physkan.problems import Dataset, ProblemSpec

__all__ = ["MAX_SECONDS", "cheap_formula", "decompose_formula"]

#: At most this many seconds (and this share of the budget left) go to the decomposition; the
#: network structures after it (additive, one inner sum, the problem's width) keep the rest.
MAX_SECONDS = 120.0
SHARE = 0.8


def decompose_formula(spec: ProblemSpec, data: Dataset, say: Reporter) -> sympy.Expr | None:
    """KAN-guided recursive decomposition of the single output on the training data,
    checked on the test data; ``None`` when it finds no law within its time."""
    if len(data.outputs) != 1 or len(data.inputs) < 2:
        return None
    left = current_budget().remaining()
    seconds = MAX_SECONDS if math.isinf(left) else min(MAX_SECONDS, SHARE * left)
    if seconds < 1.0:
        return None
    say(f"recursive decomposition with a KAN surrogate (up to {seconds:.0f} s)")
    return decompose_regression(
        data.x_train, data.y_train[:, 0], data.inputs, x_test=data.x_test, y_test=data.y_test[:, 0],
        seconds=seconds, tol=exact_rel_tolerance(spec.data.noise), library=spec.discover.library,
        cheap_done=any(t.run is cheap_formula for t in STRUCTURE_TRIES),
    )  # fmt: skip


def cheap_formula(spec: ProblemSpec, data: Dataset, say: Reporter) -> sympy.Expr | None:
    """The network-free tests of a decomposition node (:mod:`.cheap`: rational and product
    laws of ``T(y)``) on the whole problem, checked on the test data; ``None`` if none fits."""
    if len(data.outputs) != 1:
        return None
    tol = exact_rel_tolerance(spec.data.noise)
    x, y = data.x_train.double(), data.y_train[:, 0].double()
    for cand in cheap_candidates(x, y, data.inputs, rtol=tol * 1.5 if spec.data.noise else tol,
                                 library=spec.discover.library):  # fmt: skip
        got = fits_held_out(cand, data.inputs, data.x_test.double(), data.y_test[:, 0].double(), tol)
        if got is not None:
            return got
    return None
