"""The discovery pipeline: problem -> data -> train -> prune -> symbolic -> verify.

:func:`discover` resolves a problem (built-in name, path or plugin problem), samples its
data, trains a KAN with the Lightning engine, simplifies it (attribution-based pruning,
auto-symbolic with affine fits, a refit of the symbolic parameters), exports the formula
and checks it against the ground truth when there is one. Each problem type has a
*strategy* in :data:`STRATEGIES`; plugins add their own with :func:`register_strategy`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sympy
import torch
from torch import nn

from physkan.kan.network import MultKAN
from physkan.problems import Dataset, ProblemSpec, load_problem, make_dataset
from physkan.problems.errors import ProblemError
from physkan.symbolic.edges import AutoSymbolicReport, auto_symbolic
from physkan.symbolic.equivalence import equivalent
from physkan.symbolic.formula import model_formula
from physkan.symbolic.simplify import lambdify_torch, to_latex, to_text

__all__ = ["Discovery", "STRATEGIES", "discover", "register_strategy"]

Reporter = Callable[[str], None]


@dataclass
class Discovery:
    """What :func:`discover` found.

    Attributes:
        formulas: one sympy expression per output (``L`` for a Lagrangian problem).
        recovered: True/False against the ground truth, ``None`` when there is none.
        recovery: why (or why not) the formula counts as recovered.
        metrics: ``test_rmse`` and type-specific figures (rollout errors, loss, ...).
        numeric_edges: edges that stayed splines (the formula is then partial).
    """

    problem: str
    type: str
    variables: list[str]
    outputs: list[str]
    formulas: list[sympy.Expr]
    recovered: bool | None
    recovery: str
    metrics: dict[str, float]
    seconds: float
    model: nn.Module | None = None
    numeric_edges: list[tuple[int, int, int]] = field(default_factory=list)
    symbolic_report: str = ""
    zoo_id: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def formula_text(self) -> list[str]:
        return [to_text(f) for f in self.formulas]

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object of ``physkan discover`` (contract: see DESIGN.md)."""
        texts = self.formula_text
        return {
            "problem": self.problem,
            "type": self.type,
            "formula": texts[0] if len(texts) == 1 else "; ".join(
                f"{o} = {t}" for o, t in zip(self.outputs, texts)
            ),
            "formulas": texts,
            "latex": [to_latex(f) for f in self.formulas],
            "outputs": self.outputs,
            "variables": self.variables,
            "recovered": self.recovered,
            "recovery": self.recovery,
            "metrics": self.metrics,
            "seconds": round(self.seconds, 3),
            "numeric_edges": [list(e) for e in self.numeric_edges],
            "zoo_id": self.zoo_id,
        }


Strategy = Callable[[ProblemSpec, Dataset, Reporter], Discovery]
STRATEGIES: dict[str, Strategy] = {}


def register_strategy(problem_type: str, strategy: Strategy) -> None:
    """Register how problems of ``problem_type`` are discovered (plugins use this)."""
    STRATEGIES[problem_type] = strategy


def _silent(_: str) -> None:
    return None


def discover(
    problem: str | ProblemSpec,
    *,
    seed: int | None = None,
    steps: int | None = None,
    report: Reporter | None = None,
) -> Discovery:
    """Run the whole pipeline on ``problem`` (a name, a path or a spec).

    Args:
        seed: overrides ``[data].seed`` and ``[model].seed``.
        steps: overrides ``[train].steps``.
        report: called with a short message at each stage (progress display).

    Raises:
        ProblemError: for an unknown problem, an invalid file or unusable data.
    """
    start = time.perf_counter()
    say = report or _silent
    spec = problem if isinstance(problem, ProblemSpec) else load_problem(problem)
    overrides: dict[str, Any] = {}
    if seed is not None:
        overrides.update({"data.seed": seed, "model.seed": seed})
    if steps is not None:
        overrides["train.steps"] = steps
    if overrides:
        spec = spec.updated(overrides)
    _load_plugin_strategies()
    if spec.type not in STRATEGIES:
        raise ProblemError(
            f"type: no discovery strategy for problem type {spec.type!r} "
            f"(known: {', '.join(sorted(STRATEGIES))})",
            source=spec.source,
        )
    say(f"sampling data for {spec.name}")
    torch.manual_seed(spec.model.seed)
    data = make_dataset(spec)
    result = STRATEGIES[spec.type](spec, data, say)
    result.seconds = time.perf_counter() - start
    result.provenance = {"problem_source": str(spec.source), **data.meta}
    return result


def _load_plugin_strategies() -> None:
    try:
        from physkan.plugins.manager import get_plugin_manager
    except ImportError:
        return
    for problem_type, record in get_plugin_manager().problem_types().items():
        strategy = getattr(record, "strategy", None)
        if strategy is not None:
            STRATEGIES.setdefault(problem_type, strategy)


# --------------------------------------------------------------------------- helpers


def build_model(spec: ProblemSpec, inputs: list[str], outputs: list[str], width=None) -> MultKAN:
    """The ``[model]`` network of a problem, in float64, with the problem's names."""
    m = spec.model
    return MultKAN(
        width or m.width or [len(inputs), 5, len(outputs)],
        grid=m.grid, k=m.k, basis=m.basis, mult_arity=m.mult_arity,
        grid_range=tuple(m.grid_range) if m.grid_range else (-1.0, 1.0),
        seed=m.seed, variables=inputs, outputs=outputs, grid_eps=m.grid_eps, base_fun=m.base_fun,
    ).double()  # fmt: skip


def _library(spec: ProblemSpec):
    return spec.discover.library


def _symbolic_stage(model: MultKAN, x: torch.Tensor, spec: ProblemSpec, say: Reporter) -> AutoSymbolicReport:
    say("fitting symbolic functions to the edges")
    return auto_symbolic(
        model, x, _library(spec), r2_threshold=spec.discover.r2_threshold,
        weight_simple=spec.discover.weight_simple,
    )  # fmt: skip


def _formula_rmse(formulas: list[sympy.Expr], variables: list[str], x: torch.Tensor, y: torch.Tensor) -> float:
    preds = []
    for expr in formulas:
        fn = lambdify_torch(expr, variables)
        preds.append(fn(x).reshape(-1) * torch.ones(x.shape[0], dtype=x.dtype))
    pred = torch.stack(preds, 1)
    return float(((pred - y) ** 2).mean().sqrt())


def _ranges(spec: ProblemSpec, names: list[str]) -> dict[str, tuple[float, float]]:
    return {n: tuple(map(float, spec.data.ranges[n])) for n in names if n in spec.data.ranges}


# --------------------------------------------------------------------------- regression


def _regression_candidates(spec: ProblemSpec, n_in: int, n_out: int) -> list[list[Any] | None]:
    """Network shapes tried in order of simplicity; ``None`` is the problem's own width.

    Most laws in physics are compositions of few univariate functions, so a purely additive
    KAN ``[n_in, n_out]`` and a single-hidden-node KAN ``[n_in, 1, n_out]`` (one inner sum,
    one outer function) are tried before the wide network, which is then pruned.
    """
    shapes: list[list[Any] | None] = [[n_in, n_out]]
    if n_out == 1:
        shapes.append([n_in, 1, 1])
    shapes.append(None)
    return shapes


def discover_regression(spec: ProblemSpec, data: Dataset, say: Reporter) -> Discovery:
    """Occam structure search, train, prune, auto-symbolic, refit, export, verify."""
    from physkan.interpret.prune import prune
    from physkan.train import fit
    from physkan.train.objectives import RegressionObjective

    train = {"x": data.x_train, "y": data.y_train}
    tr = spec.train
    steps = max(5, tr.steps // 4)
    y_std = float(data.y_train.std()) or 1.0
    grid_kw = dict(
        grid_update_every=tr.grid_update_every if tr.update_grid else None,
        grid_update_until=tr.stop_grid_update_step,
    )
    model: MultKAN | None = None
    for width in _regression_candidates(spec, len(data.inputs), len(data.outputs)):
        candidate = build_model(spec, data.inputs, data.outputs, width)
        wide = width is None
        say(f"training {candidate.width_spec}" + (f" with sparsity (lambda={tr.lamb:g})" if wide and tr.lamb else ""))
        candidate.update_grid(data.x_train)
        fit(candidate, RegressionObjective(), train, steps=steps, lamb=tr.lamb if wide else 0.0,
            lamb_l1=tr.lamb_l1, lamb_entropy=tr.lamb_entropy, **grid_kw)  # fmt: skip
        if wide and spec.discover.prune:
            say("pruning")
            candidate = prune(candidate, data.x_train, node_th=spec.discover.node_th, edge_th=spec.discover.edge_th)
            fit(candidate, RegressionObjective(), train, steps=steps)
        with torch.no_grad():
            rel = float(((candidate(data.x_train) - data.y_train) ** 2).mean().sqrt()) / y_std
        model = candidate
        if rel < 5e-2:
            break
        say(f"{candidate.width_spec} leaves relative error {rel:.1e}; trying a larger network")
    assert model is not None
    for grid in tr.refine:
        model.refine(grid)
        fit(model, RegressionObjective(), train, steps=steps)
    report = _symbolic_stage(model, data.x_train, spec, say)
    say("refitting the symbolic parameters")
    fit(model, RegressionObjective(), train, steps=max(5, steps // 2))
    formula = model_formula(model, data.x_train, data.y_train, snap=spec.discover.snap,
                            allow_numeric=not report.complete)  # fmt: skip
    metrics: dict[str, float] = {}
    with torch.no_grad():
        metrics["model_test_rmse"] = float(((model(data.x_test) - data.y_test) ** 2).mean().sqrt())
    if report.complete:
        metrics["test_rmse"] = _formula_rmse(formula.expressions, data.inputs, data.x_test, data.y_test)
    else:
        metrics["test_rmse"] = metrics["model_test_rmse"]
    recovered, why = _check_regression(spec, formula.expressions, data)
    return Discovery(
        problem=spec.name, type=spec.type, variables=data.inputs, outputs=data.outputs,
        formulas=formula.expressions, recovered=recovered, recovery=why, metrics=metrics,
        seconds=0.0, model=model, numeric_edges=formula.numeric_edges,
        symbolic_report=report.summary(),
    )  # fmt: skip


def _check_regression(spec: ProblemSpec, found: list[sympy.Expr], data: Dataset) -> tuple[bool | None, str]:
    from physkan.problems.physics_makers import truth_expressions

    truths = truth_expressions(spec)
    if not truths:
        return None, "no ground truth"
    if any(f.atoms(sympy.core.function.AppliedUndef) for f in found):
        return False, "some edges stayed splines, so the formula is not closed-form"
    ranges = _ranges(spec, data.inputs)
    reasons = []
    ok = True
    for name, f, t in zip(data.outputs, found, truths):
        eq = equivalent(f, t, data.inputs, ranges)
        ok &= eq.equivalent
        reasons.append(f"{name}: {eq.reason}")
    return ok, "; ".join(reasons)


# --------------------------------------------------------------------------- lagrangian


def discover_lagrangian(spec: ProblemSpec, data: Dataset, say: Reporter) -> Discovery:
    """Learn ``L(q, q_dot)`` from accelerations by the Euler-Lagrange residual.

    The network starts as the free-particle Lagrangian ``T = |q_dot|^2 / 2`` (the paper's
    kanpiler initialisation, here by a short fit), which keeps the velocity Hessian
    invertible. The simplest structure is tried first: an additive ``[2n, 1]`` KAN
    (``L = sum_i f_i(q_i) + g_i(q_dot_i)``, the form of most mechanical Lagrangians); if its
    Euler-Lagrange residual stays high, the problem's ``[model].width`` is trained and pruned.
    """
    from physkan.interpret.prune import prune
    from physkan.train import fit
    from physkan.train.objectives import LagrangianObjective, RegressionObjective

    n = len(spec.system.coordinates)
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
    model, rel = train([2 * n, 1])
    if rel > 1e-3 and spec.model.width is not None and len(spec.model.width) > 2:
        say(f"additive form insufficient (relative residual {rel:.1e}); training {spec.model.width}")
        wide, rel_wide = train(None)
        if rel_wide < rel:
            model = prune(wide, state, node_th=spec.discover.node_th, edge_th=spec.discover.edge_th)
            fit(model, objective, el, steps=steps)
    for grid in tr.refine:
        model.refine(grid)
        fit(model, objective, el, steps=steps)
    report = _symbolic_stage(model, state, spec, say)
    say("refitting the symbolic parameters")
    fit(model, objective, el, steps=max(5, steps // 2))
    formula = model_formula(model, state, snap=spec.discover.snap, allow_numeric=not report.complete)
    if report.complete:
        from physkan.physics.gauge import canonical_lagrangian

        formula.expressions = [
            canonical_lagrangian(formula.expressions[0], spec.system.coordinates, snap=spec.discover.snap)
        ]
    metrics = _lagrangian_metrics(model, data, objective)
    recovered, why = _check_lagrangian(spec, formula.expressions[0], data, report.complete)
    if report.complete and spec.system.lagrangian is not None:
        metrics.update(_rollout_metrics(spec, formula.expressions[0], data))
    return Discovery(
        problem=spec.name, type=spec.type, variables=data.inputs, outputs=["L"],
        formulas=formula.expressions, recovered=recovered, recovery=why, metrics=metrics,
        seconds=0.0, model=model, numeric_edges=formula.numeric_edges,
        symbolic_report=report.summary(),
    )  # fmt: skip


def _lagrangian_metrics(model: MultKAN, data: Dataset, objective) -> dict[str, float]:
    from physkan.physics import lagrangian_accelerations

    state, qddot = data.x_test, data.extras["qddot_test"]
    pred = lagrangian_accelerations(model, state, create_graph=False, cond_max=None).detach()
    return {
        "test_rmse": float(((pred - qddot) ** 2).mean().sqrt()),
        "test_relative_rmse": float(((pred - qddot) ** 2).mean().sqrt() / qddot.std()),
    }


def _check_lagrangian(spec: ProblemSpec, found: sympy.Expr, data: Dataset, complete: bool) -> tuple[bool | None, str]:
    if spec.system.lagrangian is None:
        return None, "no ground truth"
    if not complete:
        return False, "some edges stayed splines"
    eq = equivalent(found, spec.system.lagrangian_expr(), data.inputs, _ranges(spec, data.inputs),
                    up_to="scale_offset", rtol=1e-5)  # fmt: skip
    return eq.equivalent, eq.reason


def _rollout_metrics(spec: ProblemSpec, found: sympy.Expr, data: Dataset) -> dict[str, float]:
    """Roll the found and true laws out from held-out states; trajectory error and energy drift."""
    from physkan.physics import lagrangian_from_sympy
    from physkan.physics.verify import verify_lagrangian_rollout

    coords = list(spec.system.coordinates)
    L_true = lagrangian_from_sympy(spec.system.lagrangian_expr(), coords)
    L_found = lagrangian_from_sympy(found, coords)
    z0 = data.x_test[:8]
    t = torch.linspace(0, 5, 51, dtype=torch.float64)
    try:
        out = verify_lagrangian_rollout(L_true, L_found, z0, t)
    except Exception as exc:  # noqa: BLE001 - a failed rollout is reported, not fatal
        return {"rollout_error": float("nan"), "rollout_failure": str(exc)[:200]}  # type: ignore[dict-item]
    return {f"rollout_{k}": float(v) for k, v in out.items() if isinstance(v, (int, float))}


register_strategy("regression", discover_regression)
register_strategy("lagrangian", discover_lagrangian)
