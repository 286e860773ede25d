"""Metric strategy: the hidden symmetry of the Schwarzschild black hole (KAN 2.0, sec. 5.3).

We look for ``t' = t + Delta t(r)`` that makes the spatial slices flat. The KAN models
``Delta t'(r)`` (the derivative is what the flatness condition fixes; ``Delta t`` follows by
one integration). Two stages:

1. *precision*: a one-edge KAN (a spline) is started from a smooth positive guess, trained
   on the flatness loss and refined (``[train].refine``, then finer grids) until the loss
   reaches 1e-12 in float64; each grid is polished by Gauss-Newton, since the residual is
   pointwise in ``Delta t'`` and linear in the spline coefficients;
2. *symbolic*: simple transforms of the precise ``Delta t'`` (``1/y``, ``y^2``, ...) are fitted
   by sparse dictionary regression on ``r``; the first exact one is undone symbolically and
   checked against the Gullstrand-Painleve form ``sqrt(2M/r) / (1 - 2M/r)`` (up to the
   sign, which the flatness condition leaves free).
"""

from __future__ import annotations

import sympy
import torch

from physkan.budget import current_budget
from physkan.linalg import lstsq
from physkan.problems import Dataset, ProblemSpec
from physkan.strategies.base import Discovery, Reporter
from physkan.strategies.common import build_model
from physkan.symbolic.equivalence import equivalent

__all__ = ["discover_metric"]

TARGET_LOSS = 1e-12


def discover_metric(spec: ProblemSpec, data: Dataset, say: Reporter) -> Discovery:
    """Precision spline, then a symbolic product model; verify against Gullstrand-Painleve."""
    from physkan.physics.metric import gullstrand_painleve_sympy
    from physkan.train import fit
    from physkan.train.objectives import MetricObjective, RegressionObjective

    if spec.model.kind != "kan":
        from physkan.problems.errors import ProblemError

        raise ProblemError(f"{spec.name}: model.kind: {spec.model.kind!r} is not supported for metric problems "
                           "(use kind = \"kan\")", source=spec.name)  # fmt: skip
    mass = float(spec.system.mass)
    radius = data.inputs[0]
    r = data.x_train
    objective = MetricObjective(mass=mass, derivative_given=True)
    batch = {"r": r}
    steps = max(10, spec.train.steps // 10)

    say("precision stage: training the spline of Delta t'(r)")
    spline = build_model(spec, [radius], ["delta_t_prime"], [1, 1])
    spline.update_grid(r)
    fit(spline, RegressionObjective(), {"x": r, "y": torch.ones_like(r)}, steps=3)
    loss = fit(spline, objective, batch, steps=steps).final_loss
    grids = list(spec.train.refine) or [20, 50]
    while grids[-1] < 400:
        grids.append(grids[-1] * 2)
    budget = current_budget()
    for grid in grids:
        if loss <= TARGET_LOSS or budget.check():  # precise enough, or out of time
            break
        say(f"refining the grid to {grid} (loss {loss:.1e})")
        spline.refine(grid)
        loss = fit(spline, objective, batch, steps=steps, stop_loss=TARGET_LOSS / 10).final_loss
        loss = _gauss_newton(spline, r, mass)
    spline_loss = loss

    say("symbolic stage: transforms of the precise Delta t'(r)")
    with torch.no_grad():
        teacher = spline(r)
    found = _symbolic_search(spec, radius, r, teacher, say)
    formula_expr: sympy.Expr | None = None
    symbolic_loss = float("nan")
    model = spline
    summary = "no transform of Delta t' has a closed form in the library"
    if found is not None:
        formula_expr, _, summary = found
        from physkan.physics.metric import spatial_flatness_loss
        from physkan.symbolic.parse import lambdify_torch

        fn = lambdify_torch(formula_expr, [radius])
        symbolic_loss = float(spatial_flatness_loss(lambda x: fn(x).reshape(-1, 1), r, mass,
                                                    derivative_given=True))  # fmt: skip
    metrics = {"spline_loss": spline_loss, "symbolic_loss": symbolic_loss,
               "test_rmse": _flatness_rmse(spline, data, mass)}  # fmt: skip
    truth = gullstrand_painleve_sympy(sympy.nsimplify(mass), derivative=True,
                                      r=sympy.Symbol(radius, positive=True))  # fmt: skip
    recovered, why = _check(formula_expr, truth, radius, spec, spline_loss, summary)
    formulas = [formula_expr] if formula_expr is not None else []
    return Discovery(
        problem=spec.name, type=spec.type, variables=[radius], outputs=["delta_t_prime"],
        formulas=formulas, recovered=recovered, recovery=why, metrics=metrics, seconds=0.0,
        model=model, symbolic_report=summary,
    )  # fmt: skip


def _gauss_newton(spline, r: torch.Tensor, mass: float, iters: int = 30) -> float:
    """Polish a one-edge spline of ``Delta t'`` by Gauss-Newton on the flatness residual.

    The residual ``g_rr + g_tt * y(r)^2 - 1`` is pointwise in ``y = Delta t'``, and ``y`` is
    linear in the spline coefficients, so Gauss-Newton (least squares on the linearised
    residual) converges quadratically to machine precision where LBFGS crawls.
    """
    from physkan.physics.metric import spatial_flatness_loss, spatial_metric_rr

    layer = spline.layers[0]
    g_tt = -(1 - 2 * mass / r)  # d(gamma_rr)/d(y^2)
    with torch.no_grad():
        basis = layer.basis.evaluate(r, layer.grid, layer.k)[:, 0, :]  # (N, nb)
        scale = layer.scale_sp[0, 0]
        for _ in range(iters):
            y = spline(r)
            residual = (spatial_metric_rr(y, r, mass) - 1).reshape(-1, 1)
            if float((residual**2).mean()) < 1e-30:
                break
            jac = 2 * g_tt * y * basis * scale  # (N, nb)
            step = lstsq(jac, -residual)[:, 0]
            layer.coef.data[0, :, 0] += step
        return float(spatial_flatness_loss(spline, r, mass, derivative_given=True))


TRANSFORMS: list[tuple[str, object, object]] = [
    # (name, forward y -> u, inverse as a sympy function of u)
    ("y", lambda y: y, lambda u: u),
    ("1/y", lambda y: 1 / y, lambda u: 1 / u),
    ("y^2", lambda y: y**2, lambda u: sympy.sqrt(u)),
    ("1/y^2", lambda y: 1 / y**2, lambda u: 1 / sympy.sqrt(u)),
    ("log y", lambda y: torch.log(y), lambda u: sympy.exp(u)),
]


def _symbolic_search(spec: ProblemSpec, radius: str, r: torch.Tensor, y: torch.Tensor, say: Reporter):
    """Find a closed form of ``y(r)`` through a simple transform ``u = T(y)``.

    ``Delta t'`` itself is a product (``sqrt(r) / (r - 1)`` for 2M = 1), but a transform of
    it is often a short sum of library functions (``1 / Delta t'^2 = r - 2 + 1/r``), which
    sparse dictionary regression on the one input finds exactly. The first transform whose
    fit matches ``u`` to 1e-8 (relative) wins, its constants are snapped, and the transform
    is undone symbolically. Returns ``(expr, None, summary)`` or ``None``.
    """
    from physkan.symbolic.simplify import clean_formula, snap_constants
    from physkan.symbolic.sparse import sparse_fit_1d

    library = spec.discover.library
    sign = 1.0 if float(y.mean()) >= 0 else -1.0
    y = sign * y
    pos = sympy.Symbol(radius, positive=True)
    from physkan.symbolic.library import resolve_library

    lib = resolve_library(library)
    for name, forward, inverse in TRANSFORMS:
        u = forward(y)
        if not torch.isfinite(u).all():
            continue
        say(f"sparse fit of u = {name}")
        fit = sparse_fit_1d(r[:, 0], u[:, 0], lib, max_terms=3, rtol=1e-8)
        if fit is None:
            continue
        expr_u = clean_formula(snap_constants(fit.to_sympy(pos, lib), zero_threshold=1e-9))
        out = sympy.simplify(sympy.nsimplify(sign * inverse(expr_u), rational=False))
        return out, None, f"u = {name} of Delta t' is {expr_u} (relative error {fit.relative_error:.1e})"
    return None


def _flatness_rmse(model, data: Dataset, mass: float) -> float:
    """Root of the flatness loss on the held-out radii."""
    from physkan.physics.metric import spatial_flatness_loss

    with torch.no_grad():
        return float(spatial_flatness_loss(model, data.x_test, mass, derivative_given=True)) ** 0.5


def _check(found, truth, radius: str, spec: ProblemSpec, loss: float, report: str) -> tuple[bool, str]:
    if found is None:
        return False, f"no closed form: {report}"
    lo, hi = (float(v) for v in spec.data.ranges[radius])
    for sign in (1, -1):
        eq = equivalent(sign * found, truth, [radius], {radius: (lo, hi)})
        if eq.equivalent:
            flat = "reached" if loss <= TARGET_LOSS else "NOT reached"
            return loss <= TARGET_LOSS, (
                f"Delta t'(r) = {'' if sign == 1 else '-'}Gullstrand-Painleve; spline loss "
                f"{loss:.1e} ({flat} {TARGET_LOSS:.0e})"
            )
    return False, f"not the Gullstrand-Painleve form: {eq.reason}"
