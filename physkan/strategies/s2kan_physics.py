"""Physics discoveries with ``[model] kind = "s2kan"``: an S2KAN trained on the Euler–Lagrange
or the conservation loss (through the Lightning engine), its MDL gates choosing the terms.

* Lagrangian: with several degrees of freedom the structured route of
  :mod:`physkan.strategies.lagrangian_nd` first (its blocks are S2KAN-like: a dictionary of
  library terms chosen by a description-length-like pruning); otherwise an additive
  ``[2n, 1]`` S2KAN (``L = Σ f_i(q_i) + g_i(q̇_i)``), warm-started on the free-particle
  teacher ``T = |q̇|²/2`` so the velocity Hessian is invertible; the problem's
  ``[model].width`` is tried when the additive residual stays high. The formula is put in the
  canonical gauge (no total derivatives, no constant, unit mass) before it is compared.
* Conservation: an additive ``[d, m]`` S2KAN (one output per quantity) on
  :func:`~physkan.physics.conservation_loss` (with its independence term); each quantity is
  canonicalised and the set is checked symbolically (``grad Q · f = 0``, full rank).
"""

from __future__ import annotations

import sympy

from physkan.problems import Dataset, ProblemSpec
from physkan.s2kan import S2KAN, train_s2kan
from physkan.strategies.base import Discovery, Reporter
from physkan.strategies.common import sample_ranges
from physkan.strategies.s2kan_fit import S2KANReport, kinetic_teacher, s2kan_config, s2kan_model
from physkan.symbolic.taylor import taylor_regime

__all__ = ["discover_conservation_s2kan", "discover_lagrangian_s2kan"]

#: Relative Euler–Lagrange residual above which a wider S2KAN is tried.
LAGRANGIAN_GATE = 1e-3


def _metrics(model: S2KAN, dl, extra: dict[str, float]) -> dict[str, float]:
    out = dict(extra)
    out.update(dl.metrics())
    out["n_spline_edges"] = float(len(model.spline_edges()))
    return out


def discover_lagrangian_s2kan(spec: ProblemSpec, data: Dataset, say: Reporter) -> Discovery:
    """Learn ``L(q, q̇)`` with an S2KAN on the Euler–Lagrange residual."""
    from physkan.physics.gauge import canonical_lagrangian
    from physkan.strategies.lagrangian import (
        _check_lagrangian,
        _lagrangian_metrics,
        _rollout_metrics,
    )
    from physkan.train.objectives import LagrangianObjective

    n = len(spec.system.coordinates)
    if n >= 2:  # several degrees of freedom: the structured route first (lagrangian_nd)
        from physkan.strategies.lagrangian_nd import discover_lagrangian_nd

        found = discover_lagrangian_nd(spec, data, say)
        if found is not None:
            return found
    state, qddot = data.x_train, data.extras["qddot_train"]
    batch = {"state": state, "qddot": qddot}
    teacher = kinetic_teacher(state)
    objective = LagrangianObjective(cond_max=None)
    scale = float(qddot.var()) or 1.0

    def train(width: list) -> tuple[S2KAN, object, float]:
        say(f"training an S2KAN Lagrangian {width}")
        model = s2kan_model(spec, width, data.inputs, ["L"])
        dl = train_s2kan(model, batch, objective=objective, teacher=teacher, cfg=s2kan_config(spec))
        return model, dl, dl.mse / scale

    model, dl, rel = train([2 * n, 1])
    if rel > LAGRANGIAN_GATE and spec.model.width is not None and len(spec.model.width) > 2:
        say(f"additive form insufficient (relative residual {rel:.1e}); trying {spec.model.width}")
        wide = train(list(spec.model.width))
        if wide[1].total_bits < dl.total_bits:
            model, dl, rel = wide
    report = S2KANReport.of(model)
    (expr,) = model.formula()
    if report.complete:
        expr = canonical_lagrangian(expr, spec.system.coordinates, snap=spec.discover.snap)
    metrics = _metrics(model, dl, _lagrangian_metrics(model, data))
    recovered, why = _check_lagrangian(spec, expr, data, report.complete)
    if report.complete and spec.system.lagrangian is not None:
        metrics.update(_rollout_metrics(spec, expr, data))
    return Discovery(
        problem=spec.name, type=spec.type, variables=data.inputs, outputs=["L"], formulas=[expr],
        recovered=recovered, recovery=why, metrics=metrics, seconds=0.0, model=model,
        numeric_edges=model.spline_edges(), symbolic_report=report.summary(),
    )  # fmt: skip


def discover_conservation_s2kan(spec: ProblemSpec, data: Dataset, say: Reporter) -> Discovery:
    """Conserved quantities as the outputs of an additive S2KAN on the conservation loss."""
    from physkan.physics.verify import conserved_quantities_check
    from physkan.strategies.conservation import _residuals, canonical_quantity
    from physkan.train.objectives import ConservationObjective

    system = spec.system
    names = list(system.state)
    m = system.n_quantities
    outputs = [f"H{i + 1}" for i in range(m)]
    batch = {"z": data.x_train, "f": data.extras["f_train"]}
    say(f"training an additive S2KAN [{len(names)}, {m}] on the conservation loss")
    model = s2kan_model(spec, [len(names), m], names, outputs)
    cfg = s2kan_config(spec)
    cfg.warmup_optimizer = "lbfgs"
    dl = train_s2kan(model, batch, objective=ConservationObjective(), cfg=cfg)
    report = S2KANReport.of(model)
    exprs = model.formula()
    syms = [sympy.Symbol(v, real=True) for v in names]
    box = sample_ranges(spec, names)
    ranges = [box[v] for v in names]
    found: list[sympy.Expr] = []

    def accept(form: sympy.Expr) -> bool:
        """Keep ``form`` (canonical) if it is exactly conserved and independent of ``found``."""
        q = canonical_quantity(form, snap=spec.discover.snap)
        if q.free_symbols and conserved_quantities_check(found + [q], system.dynamics_exprs(), syms, ranges)["ok"]:
            found.append(q)
            return True
        return False

    for expr in exprs:
        if expr.atoms(sympy.core.function.AppliedUndef):
            continue
        expr = expr.subs({sympy.Symbol(v): s for v, s in zip(names, syms, strict=True)})
        # a term such as cos(0.03·x) imitates x² (the MDL cannot tell them apart): if the formula
        # as found is not exactly conserved, its Taylor-regime polynomial gets the same test
        if not accept(expr) and (taylor := taylor_regime(expr, box)) != expr:
            accept(taylor)
    recovered = len(found) == m
    why = f"{len(found)} of {m} outputs are exactly conserved and independent (grad Q . f = 0 symbolically)"
    metrics = _metrics(model, dl, _residuals(found, names, data))
    return Discovery(
        problem=spec.name, type=spec.type, variables=names, outputs=outputs[: len(found)] if found else outputs,
        formulas=found or exprs, recovered=recovered, recovery=why, metrics=metrics, seconds=0.0,
        model=model, numeric_edges=model.spline_edges(), symbolic_report=report.summary(),
    )  # fmt: skip
