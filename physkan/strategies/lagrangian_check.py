"""Judging a found Lagrangian: canonical form, recovery up to gauge, test and rollout metrics.

A Lagrangian is only defined up to a global scale, an additive constant and a total time
derivative ``dG(q)/dt``. A found formula counts as recovered when it, or its canonical form
(:func:`physkan.physics.gauge.canonical_lagrangian`), equals the truth's canonical form up
to scale and offset. Some systems (linear ones above all) also have *alternative*
Lagrangians, not related by a gauge, that give the same equations of motion; such a result
is reported as not recovered, saying that its Euler–Lagrange accelerations agree
(relative difference ≤ :data:`EL_RTOL` on held-out states).
"""

from __future__ import annotations

from collections.abc import Callable

import sympy
import torch
from torch import Tensor

from physkan.budget import current_budget
from physkan.problems import Dataset, ProblemSpec
from physkan.strategies.base import Discovery
from physkan.strategies.common import sample_ranges
from physkan.symbolic.equivalence import equivalent

__all__ = ["EL_RTOL", "check_lagrangian", "lagrangian_discovery", "same_equations_of_motion"]

#: largest relative difference of the accelerations of two Lagrangians judged the same.
EL_RTOL = 1e-8


def _accelerations(L: Callable[[Tensor], Tensor], state: Tensor) -> Tensor:
    from physkan.physics import lagrangian_accelerations

    return lagrangian_accelerations(L, state, create_graph=False, cond_max=None).detach()


def same_equations_of_motion(a: sympy.Expr, b: sympy.Expr, coordinates: list[str], state: Tensor) -> float:
    """Relative RMS difference of the accelerations of ``a`` and ``b`` at ``state`` ``(N, 2n)``."""
    from physkan.physics import lagrangian_from_sympy

    qa = _accelerations(lagrangian_from_sympy(a, coordinates), state)
    qb = _accelerations(lagrangian_from_sympy(b, coordinates), state)
    ok = torch.isfinite(qa).all(1) & torch.isfinite(qb).all(1)
    if not bool(ok.any()):
        return float("inf")
    return float(((qa - qb)[ok] ** 2).mean().sqrt() / ((qb[ok] ** 2).mean().sqrt() + 1e-300))


def check_lagrangian(spec: ProblemSpec, found: sympy.Expr, data: Dataset, complete: bool) -> tuple[bool | None, str]:
    """(recovered, why) for a found Lagrangian against the problem's ground truth."""
    from physkan.physics.gauge import canonical_lagrangian

    if spec.system.lagrangian is None:
        return None, "no ground truth"
    if not complete:
        return False, "some terms stayed numeric"
    coords = list(spec.system.coordinates)
    truth = spec.system.lagrangian_expr()
    ranges = sample_ranges(spec, data.inputs)
    eq = equivalent(found, truth, data.inputs, ranges, up_to="scale_offset", rtol=1e-5)
    if eq.equivalent or len(coords) == 1:
        return eq.equivalent, eq.reason
    canon = canonical_lagrangian(truth, coords)
    eq = equivalent(found, canon, data.inputs, ranges, up_to="scale_offset", rtol=1e-5)
    if eq.equivalent:
        return True, f"equal to the truth's canonical form ({eq.reason})"
    if any(isinstance(a, sympy.Float) for a in found.atoms(sympy.Number)):
        return False, f"constants not exact: {eq.reason}"
    rel = same_equations_of_motion(found, truth, coords, data.x_test[:256])
    if rel <= EL_RTOL:
        return False, (f"same Euler-Lagrange equations as the truth (relative difference {rel:.1e}) but "
                       "not the same Lagrangian up to scale and a total derivative (an alternative Lagrangian)")
    return False, f"Euler-Lagrange accelerations differ from the truth's by {rel:.1e} (relative)"


def rollout_metrics(spec: ProblemSpec, L_found: Callable[[Tensor], Tensor], data: Dataset, prefix: str,
                    shrink: float = 1.0) -> dict[str, float]:  # fmt: skip
    """Roll the found and the true laws out for t in [0, 5] from 8 held-out states.

    ``shrink < 1`` moves the states that fraction of the way from the training data's mean
    (a numeric model is only valid where it was fitted).
    """
    from physkan.physics import lagrangian_from_sympy
    from physkan.physics.verify import verify_lagrangian_rollout

    L_true = lagrangian_from_sympy(spec.system.lagrangian_expr(), list(spec.system.coordinates))
    t = torch.linspace(0, 5, 51, dtype=torch.float64)
    try:
        centre = data.x_train.mean(0)
        z0 = centre + shrink * (data.x_test[:8] - centre)
        out = verify_lagrangian_rollout(L_true, L_found, z0, t)
    except Exception as exc:  # noqa: BLE001 - a failed rollout is reported, not fatal
        return {f"{prefix}error": float("nan"), f"{prefix}failure": str(exc)[:200]}  # type: ignore[dict-item]
    return {f"{prefix}{k}": float(v) for k, v in out.items() if isinstance(v, (int, float))}


def lagrangian_discovery(spec: ProblemSpec, data: Dataset, expr: sympy.Expr, complete: bool,
                         model: Callable[[Tensor], Tensor], extra: dict[str, float]) -> Discovery:  # fmt: skip
    """The :class:`Discovery` of a found Lagrangian ``expr`` (model: the learned numeric ``L``)."""
    from physkan.physics import lagrangian_from_sympy
    from physkan.physics.gauge import canonical_lagrangian

    coords = list(spec.system.coordinates)
    if complete:
        expr = canonical_lagrangian(expr, coords, snap=spec.discover.snap)
    L_formula = lagrangian_from_sympy(expr, coords)
    state, qddot = data.x_test, data.extras["qddot_test"]
    pred = _accelerations(L_formula if complete else model, state)
    rmse = float(((pred - qddot) ** 2).mean().sqrt())
    metrics = {"test_rmse": rmse, "test_relative_rmse": rmse / (float(qddot.std()) or 1.0), **extra}
    recovered, why = check_lagrangian(spec, expr, data, complete)
    if spec.system.lagrangian is not None and not current_budget().check():
        # the formula when it is exact, else the learned numeric model (from states drawn
        # towards the data's centre, so that its trajectories stay where it was fitted)
        if complete:
            metrics.update(rollout_metrics(spec, L_formula, data, "rollout_"))
        else:
            metrics.update(rollout_metrics(spec, model, data, "model_rollout_", shrink=0.5))
    return Discovery(
        problem=spec.name, type=spec.type, variables=data.inputs, outputs=["L"], formulas=[expr],
        recovered=recovered, recovery=why, metrics=metrics, seconds=0.0, model=None,
        numeric_edges=[], symbolic_report="structured Lagrangian: " + ("exact" if complete else "partial"),
    )  # fmt: skip
