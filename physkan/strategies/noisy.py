"""The regression answer on noisy data: its constants snapped, and long one-variable parts
replaced by library functions, as far as the noise allows.

With ``[data].noise`` > 0 the searches hand back formulas whose constants carry the noise
(``cos(1.0002*theta)``, a tiny additive ``- 4.7e-6``, ``0.2887*sqrt(3)``) or with a rational
stand-in for ``sin``. :func:`denoised_answer` runs :func:`physkan.symbolic.denoise.denoise_formula`
on the training data (a chi-square test of every snap against the best refit of the formula,
see :mod:`physkan.symbolic.snap_noise`) within a few seconds: the search's budget when some
is left, else a little of discovery's reserve (:data:`RESERVE_SECONDS`, at most
:data:`RESERVE_SHARE` of the search's seconds, so a short budget is still met).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy

from physkan.budget import Budget, budget_scope, current_budget
from physkan.symbolic.denoise import denoise_formula

if TYPE_CHECKING:  # pragma: no cover - typing only
    from physkan.problems import Dataset, ProblemSpec

__all__ = ["RESERVE_SECONDS", "RESERVE_SHARE", "SECONDS", "denoised_answer"]

#: Seconds the noise-aware cleanup of the answer may take.
SECONDS = 5.0
#: ... once the search budget is spent (taken from discovery's reserve), and at most this
#: share of the search budget's seconds.
RESERVE_SECONDS = 1.5
RESERVE_SHARE = 0.05


def denoised_answer(expr: sympy.Expr, spec: ProblemSpec, data: Dataset) -> sympy.Expr | None:
    """The simplest formula the noisy training data allow in place of ``expr`` (one output),
    or ``None`` on noise-free data or when nothing changes."""
    if not spec.data.noise > 0 or len(data.outputs) != 1:
        return None
    budget = current_budget()
    left = budget.remaining()
    reserve = RESERVE_SECONDS if budget.seconds is None else min(RESERVE_SECONDS, RESERVE_SHARE * budget.seconds)
    seconds = max(0.05, min(SECONDS, left) if left > reserve else reserve)
    with budget_scope(Budget(seconds)):
        got = denoise_formula(expr, data.inputs, data.x_train, data.y_train[:, 0], noise=spec.data.noise,
                              library=spec.discover.library, seconds=seconds)  # fmt: skip
    return None if got.expr == expr else got.expr
