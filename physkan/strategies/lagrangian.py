"""Lagrangian strategy: learn L(q, q_dot) from accelerations by the Euler-Lagrange residual."""

from __future__ import annotations

import sympy
import torch

from physkan.budget import current_budget
from physkan.kan.network import MultKAN
from physkan.linalg import lstsq
from physkan.problems import Dataset, ProblemSpec
from physkan.strategies.base import Discovery, Reporter
from physkan.strategies.common import build_model, symbolic_stage
from physkan.symbolic.formula import model_formula

__all__ = ["discover_lagrangian"]



def discover_lagrangian(spec: ProblemSpec, data: Dataset, say: Reporter) -> Discovery:
    """Learn ``L(q, q_dot)`` from accelerations by the Euler-Lagrange residual.

    With several degrees of freedom the structured route of
    :mod:`physkan.strategies.lagrangian_nd` (``L = ½q̇ᵀM(q)q̇ + A(q)·q̇ − V(q)``, one linear
    solve per stage) runs first; the KAN below is the fallback when that form does not fit.
    The network starts as the free-particle Lagrangian ``T = |q_dot|^2 / 2`` (the paper's
    kanpiler initialisation, here by a short fit), which keeps the velocity Hessian
    invertible. The simplest structure is tried first: an additive ``[2n, 1]`` KAN
    (``L = sum_i f_i(q_i) + g_i(q_dot_i)``, the form of most mechanical Lagrangians); if its
    Euler-Lagrange residual stays high, the problem's ``[model].width`` is trained and pruned.
    Once the time budget (:func:`physkan.budget.current_budget`) has expired, the optional
    stages (refinements, the wider network, the rollout check) are skipped.
    """
    from physkan.interpret.prune import prune
    from physkan.train import fit
    from physkan.train.objectives import LagrangianObjective, RegressionObjective

    if spec.model.kind == "s2kan":
        from physkan.strategies.s2kan_physics import discover_lagrangian_s2kan

        return discover_lagrangian_s2kan(spec, data, say)
    n = len(spec.system.coordinates)
    if n >= 2:
        from physkan.strategies.lagrangian_nd import discover_lagrangian_nd

        found = discover_lagrangian_nd(spec, data, say)
        if found is not None:
            return found
    state, qddot = data.x_train, data.extras["qddot_train"]
    el = {"state": state, "qddot": qddot}
    objective = LagrangianObjective(cond_max=None)
    kinetic = {"x": state, "y": 0.5 * (state[:, n:] ** 2).sum(1, keepdim=True)}
    scale = float(qddot.var()) or 1.0
    tr = spec.train
    steps = max(5, tr.steps // 10)

    def train(width) -> tuple[MultKAN, float]:
        model = build_model(spec, data.inputs, ["L"], width)
        model.update_grid(state)
        fit(model, RegressionObjective(), kinetic, steps=5)
        result = fit(model, objective, el, steps=steps)
        return model, result.final_loss / scale

    say("training an additive Lagrangian [2n, 1]")
    budget = current_budget()
    model, rel = train([2 * n, 1])
    if rel > 1e-3 and not budget.check():
        grid = max(20, 4 * spec.model.grid)
        say(f"refining the additive Lagrangian to G={grid} (relative residual {rel:.1e})")
        model.refine(grid)
        rel = fit(model, objective, el, steps=steps).final_loss / scale
    if rel > 1e-3 and spec.model.width is not None and len(spec.model.width) > 2 and not budget.check():
        say(f"additive form insufficient (relative residual {rel:.1e}); training {spec.model.width}")
        wide, rel_wide = train(None)
        if rel_wide < rel:
            model = prune(wide, state, node_th=spec.discover.node_th, edge_th=spec.discover.edge_th)
            fit(model, objective, el, steps=steps)
    for grid in tr.refine:
        if budget.check():
            break
        model.refine(grid)
        fit(model, objective, el, steps=steps)
    if model.width_spec == [2 * n, 1]:
        remove_linear_gauge(model, n)
    report = symbolic_stage(model, state, spec, say)
    say("refitting the symbolic parameters")
    fit(model, objective, el, steps=max(5, steps // 2))
    formula = model_formula(model, state, snap=spec.discover.snap, allow_numeric=not report.complete)
    if report.complete:
        from physkan.physics.gauge import canonical_lagrangian

        formula.expressions = [
            canonical_lagrangian(formula.expressions[0], spec.system.coordinates, snap=spec.discover.snap)
        ]
    metrics = _lagrangian_metrics(model, data)
    recovered, why = _check_lagrangian(spec, formula.expressions[0], data, report.complete)
    if report.complete and spec.system.lagrangian is not None and not budget.check():
        metrics.update(_rollout_metrics(spec, formula.expressions[0], data))
    return Discovery(
        problem=spec.name, type=spec.type, variables=data.inputs, outputs=["L"],
        formulas=formula.expressions, recovered=recovered, recovery=why, metrics=metrics,
        seconds=0.0, model=model, numeric_edges=formula.numeric_edges,
        symbolic_report=report.summary(),
    )  # fmt: skip


@torch.no_grad()
def remove_linear_gauge(model: MultKAN, n: int, n_samples: int = 2001) -> None:
    """Remove the pure-gauge term ``e * q_dot_i`` from the velocity edges of an additive KAN.

    ``L + e * q_dot`` (``e`` constant) is the total derivative of ``e * q`` and changes no
    equation of motion, so training leaves an arbitrary amount of it in each velocity edge.
    We take ``e`` as the linear part of the edge's odd component and refit the spline
    coefficients without it (exact: B-splines reproduce linear functions), so that symbolic
    fitting sees the physical, gauge-fixed edge.
    """
    layer = model.layers[0]
    for i in range(n, 2 * n):
        lo, hi = (float(v) for v in layer.grid_interior()[i, [0, -1]])
        half = min(abs(lo), abs(hi))
        if half <= 0:
            continue
        v = torch.linspace(-half, half, n_samples, dtype=layer.coef.dtype)
        x = torch.zeros(n_samples, layer.in_dim, dtype=v.dtype)
        x[:, i] = v
        edge = layer.edge_activations(x)[:, i, 0]
        odd = 0.5 * (edge - edge.flip(0))
        e = float((odd * v).sum() / (v * v).sum())
        full = torch.linspace(lo, hi, n_samples, dtype=v.dtype)
        x[:, i] = full
        basis = layer.basis.evaluate(x, layer.grid, layer.k)[:, i, :]  # (S, nb)
        spline = layer.spline_values(x)[:, i, 0] - e * full / layer.scale_sp[i, 0]
        coef = lstsq(basis, spline[:, None])[:, 0]
        layer.coef.data[i, :, 0] = coef


def _lagrangian_metrics(model: MultKAN, data: Dataset) -> dict[str, float]:
    from physkan.physics import lagrangian_accelerations

    state, qddot = data.x_test, data.extras["qddot_test"]
    pred = lagrangian_accelerations(model, state, create_graph=False, cond_max=None).detach()
    return {
        "test_rmse": float(((pred - qddot) ** 2).mean().sqrt()),
        "test_relative_rmse": float(((pred - qddot) ** 2).mean().sqrt() / qddot.std()),
    }


def _check_lagrangian(spec: ProblemSpec, found: sympy.Expr, data: Dataset, complete: bool) -> tuple[bool | None, str]:
    from physkan.strategies.lagrangian_check import check_lagrangian

    if spec.system.lagrangian is not None and not complete:
        return False, "some edges stayed splines"
    return check_lagrangian(spec, found, data, complete)


def _rollout_metrics(spec: ProblemSpec, found: sympy.Expr, data: Dataset) -> dict[str, float]:
    """Roll the found and true laws out from held-out states; trajectory error and energy drift."""
    from physkan.physics import lagrangian_from_sympy
    from physkan.strategies.lagrangian_check import rollout_metrics

    return rollout_metrics(spec, lagrangian_from_sympy(found, list(spec.system.coordinates)), data, "rollout_")
