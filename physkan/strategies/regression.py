"""Regression strategy: Occam structure search, train, prune, auto-symbolic, refit, verify.

Candidate structures are tried from the simplest up, and the search stops at the first one
whose *symbolic* formula fits held-out data to ~machine precision (an exact fit):

0. ``[n_in, [0, 1], 1]`` — one product node: ``y = K·prod_i g_i(x_i)`` of any sign, fitted by
   alternating least squares (cheap; exact or skipped), see :mod:`physkan.strategies.product`;
   A variant with one additive block, ``prod_i g_i(x_i)·(sum_{j in B} h_j(x_j) + c)`` (on
   ``y`` or ``1/y``), runs after step 1;
1. ``log|y|`` with ``[n_in, 1]`` (when ``y`` keeps one sign) — a multiplicatively separable
   law ``y = s·prod_i g_i(x_i)`` (power laws, most of physics' prefactor formulas), see
   :mod:`physkan.strategies.logsep`;
2. ``[n_in, n_out]`` — an additive law ``y = sum_i f_i(x_i)``;
3. ``[n_in, 1, 1]`` — one inner sum, one outer function (``exp(sin(pi x) + y^2)``);
4. the problem's ``[model].width``, trained with sparsity and pruned.

A candidate whose spline network already misses the data (relative error >= 5e-2) skips
the symbolic stage. When no candidate is exact, the one with the smallest formula error wins.

Structure tries registered in :mod:`physkan.strategies.structures` run at their place in
this order. Every closed-form formula met is offered to the Pareto front in force
(:mod:`physkan.symbolic.pareto`), and the answer is the simplest formula of the front within
the exactness tolerance of the best one (scaled to ``[data].noise`` on noisy data). The
search shares the time budget (:func:`physkan.budget.current_budget`): once it has expired
no further structure is tried and the best formula so far is returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy
import torch
from torch import Tensor

from physkan.budget import current_budget
from physkan.kan.network import MultKAN
from physkan.problems import Dataset, ProblemSpec
from physkan.strategies.answer import (
    Trial,
    better,
    choose_simplest,
    compiled_formula,
    denoise_answer,
    formula_test_rmse,
    offer_trial,
    rel_error,
)
from physkan.strategies.base import Discovery, Reporter
from physkan.strategies.common import build_model, formula_rmse, sample_ranges, symbolic_stage
from physkan.strategies.decompose.strategy import cheap_formula, decompose_formula
from physkan.strategies.logsep import (
    LOG_LIBRARY,
    linear_log_formula,
    log_formula,
    log_target,
    sign_of,
)
from physkan.strategies.product import block_product_formula, product_formula
from physkan.strategies.s2kan_fit import S2KANReport
from physkan.strategies.structures import (
    EXACT_REL_RMSE,
    STRUCTURE_TRIES,
    StructureRun,
    exact_rel_tolerance,
    register_structure_try,
)
from physkan.symbolic.edges import ENGINE_AUTO_SYMBOLIC, AutoSymbolicReport, auto_symbolic
from physkan.symbolic.equivalence import equivalent
from physkan.symbolic.formula import model_formula

# ---- structure tries of other modules (issue 15) register here, e.g. the decomposer:
# register_structure_try("decomposition", decompose_formula, after="product")
# (see physkan.strategies.structures; a try returns a closed-form formula or None)

register_structure_try("network-free rational and product laws of T(y)", cheap_formula, after="product")
register_structure_try("recursive decomposition (KAN surrogate)", decompose_formula, after="block")

__all__ = ["EXACT_REL_RMSE", "discover_regression", "register_structure_try"]
#: Relative training error of the spline network above which the symbolic stage is skipped.
SPLINE_GATE = 5e-2
#: Relative log-space training error of the symbolic network below which ``exp`` of it is built.
LOG_EXACT_REL = 1e-5
#: LBFGS steps of the probe fit of a small structure, and the relative error that ends it.
PROBE_STEPS = 10
PROBE_GATE = 0.1


@dataclass
class _Candidate:
    """One structure of the search."""

    label: str
    width: list[Any] | None
    log_space: bool = False
    product: bool = False
    block: bool = False
    kind: str = "width"  # one of structures.KINDS
    custom: StructureRun | None = None  # a registered structure try


def _regression_candidates(spec: ProblemSpec, data: Dataset) -> list[_Candidate]:
    """Network shapes tried in order of simplicity; ``width=None`` is the problem's own width."""
    n_in, n_out = len(data.inputs), len(data.outputs)
    shapes = []
    if n_out == 1 and n_in > 1:
        shapes.append(_Candidate(f"product [{n_in}, [0, 1], 1]", [n_in, [0, 1], 1], product=True, kind="product"))
    if n_out == 1 and sign_of(data.y_train) != 0 and n_in > 1:
        shapes.append(_Candidate(f"log-additive [{n_in}, 1] on log|y|", [n_in, 1], log_space=True,
                                 kind="log-additive"))  # fmt: skip
    if n_out == 1 and n_in > 2:
        shapes.append(_Candidate("product with one additive block", None, product=True, block=True, kind="block"))
    shapes.append(_Candidate(f"additive [{n_in}, {n_out}]", [n_in, n_out], kind="additive"))
    if n_out == 1:
        shapes.append(_Candidate(f"[{n_in}, 1, 1]", [n_in, 1, 1], kind="inner-sum"))
    shapes.append(_Candidate("problem width", None))
    if n_out != 1:
        return shapes
    out = [_Candidate(t.label, None, kind="custom", custom=t.run) for t in STRUCTURE_TRIES if t.after == "start"]
    for shape in shapes:  # each registered try right after its kind (or where it would be)
        out.append(shape)
        out += [_Candidate(t.label, None, kind="custom", custom=t.run) for t in STRUCTURE_TRIES if t.after == shape.kind]
    placed = {c.label for c in out}
    out[-1:-1] = [_Candidate(t.label, None, kind="custom", custom=t.run) for t in STRUCTURE_TRIES if t.label not in placed]
    return out


def _train_rmse(model: MultKAN, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float(((model(x) - y) ** 2).mean().sqrt())


def _run_product(cand: _Candidate, spec: ProblemSpec, data: Dataset, say: Reporter) -> Trial | None:
    """The product structure (rank-one fit, symbolic factors, exact check, see ``product``),
    or a registered structure try (``cand.custom``)."""
    say(f"testing {cand.label}")
    search = block_product_formula if cand.block else product_formula
    try:
        if cand.custom is not None:
            expr = cand.custom(spec, data, say)
        else:
            expr = search(data.x_train, data.y_train, data.inputs, spec.discover.library,
                          exact_rel=max(1e-7, 2 * spec.data.noise))  # noisy y: residual ~ noise
    except (ValueError, RuntimeError, ZeroDivisionError, OverflowError) as exc:
        say(f"{cand.label} failed: {exc}")
        return None
    if expr is None:
        say(f"{cand.label}: structure does not apply")
        return None
    model = compiled_formula(spec, data, expr)  # None: the formula is kept without a model
    trial = Trial(cand.label, model, formulas=[expr], report=AutoSymbolicReport())
    trial.test_rmse = formula_rmse([expr], data.inputs, data.x_test, data.y_test)
    trial.model_test_rmse = trial.test_rmse
    trial.rel_error = rel_error(trial.test_rmse, data.y_test)
    return trial


def _run_candidate(cand: _Candidate, spec: ProblemSpec, data: Dataset, say: Reporter) -> Trial | None:
    """Train one structure; if its network is accurate, make it symbolic and export it."""
    from physkan.interpret.prune import prune
    from physkan.train import fit
    from physkan.train.objectives import RegressionObjective

    if cand.product or cand.custom is not None:
        return _run_product(cand, spec, data, say)
    if spec.model.kind == "s2kan":
        return _run_s2kan(cand, spec, data, say)
    tr = spec.train
    steps = max(5, tr.steps // 4)
    sign = sign_of(data.y_train) if cand.log_space else 0
    y_train = log_target(data.y_train) if cand.log_space else data.y_train
    train = {"x": data.x_train, "y": y_train}
    outputs = ["log_abs_y"] if cand.log_space else data.outputs
    wide = cand.width is None
    model = build_model(spec, data.inputs, outputs, cand.width)
    say(f"training {cand.label}: {model.width_spec}"
        + (f" with sparsity (lambda={tr.lamb:g})" if wide and tr.lamb else ""))  # fmt: skip
    model.update_grid(data.x_train)
    grid_kw = dict(grid_update_every=tr.grid_update_every if tr.update_grid else None,
                   grid_update_until=tr.stop_grid_update_step)  # fmt: skip
    if wide:
        fit(model, RegressionObjective(), train, steps=steps, lamb=tr.lamb, lamb_l1=tr.lamb_l1,
            lamb_entropy=tr.lamb_entropy, **grid_kw)  # fmt: skip
    else:  # a short probe first: a wrong structure shows a large error within a few steps
        probe = min(steps, PROBE_STEPS)
        fit(model, RegressionObjective(), train, steps=probe, **grid_kw)
        rel = rel_error(_train_rmse(model, data.x_train, y_train), y_train)
        if rel < PROBE_GATE and steps > probe and not current_budget().expired():
            fit(model, RegressionObjective(), train, steps=steps - probe, **grid_kw)
    if wide and spec.discover.prune and not current_budget().expired():
        say("pruning")
        model = prune(model, data.x_train, node_th=spec.discover.node_th, edge_th=spec.discover.edge_th)
        fit(model, RegressionObjective(), train, steps=steps)
    rel = rel_error(_train_rmse(model, data.x_train, y_train), y_train)

    def spline_predict(x: Tensor) -> Tensor:
        with torch.no_grad():
            out = model(x)
        return sign * out.exp() if cand.log_space else out

    trial = Trial(cand.label, model, log_sign=sign)
    trial.model_test_rmse = float(((spline_predict(data.x_test) - data.y_test) ** 2).mean().sqrt())
    trial.test_rmse = trial.model_test_rmse
    trial.rel_error = rel_error(trial.model_test_rmse, data.y_test)
    if rel >= SPLINE_GATE:
        say(f"{model.width_spec} leaves relative error {rel:.1e}; trying a larger network")
        return trial
    for grid in tr.refine:
        if current_budget().check():
            break
        model.refine(grid)
        fit(model, RegressionObjective(), train, steps=steps)
    if cand.log_space:
        say("fitting symbolic functions to the log-space edges")
        library = list(dict.fromkeys([*LOG_LIBRARY, *(spec.discover.library or [])]))
        trial.report = auto_symbolic(model, data.x_train, library, r2_threshold=spec.discover.r2_threshold,
                                     weight_simple=spec.discover.weight_simple,
                                     **ENGINE_AUTO_SYMBOLIC)  # type: ignore[arg-type]  # fmt: skip
    else:
        trial.report = symbolic_stage(model, data.x_train, spec, say)
    expr: sympy.Expr | None = None
    if cand.log_space and trial.report.complete:  # exact linear refit first: no LBFGS needed
        expr = linear_log_formula(model, data.inputs, sign, data.x_train, data.y_train)
    if expr is None:
        say("refitting the symbolic parameters")
        fit(model, RegressionObjective(), train, steps=max(5, steps // 2))
    if cand.log_space:
        if not trial.report.complete:
            return trial
        log_rel = rel_error(_train_rmse(model, data.x_train, y_train), y_train)
        if expr is None and log_rel > max(LOG_EXACT_REL, 10 * spec.data.noise):
            # only a (near-)exact log-space law is worth the sympy work of exponentiating it
            say(f"log-space symbolic fit not exact (relative error {log_rel:.1e})")
            return trial
        try:
            if expr is None:
                expr = log_formula(model, data.inputs, sign, data.x_train, data.y_train)
            compiled = compiled_formula(spec, data, expr)
            if compiled is not None:  # the law as a KAN in y-space, not the log-space network
                trial.model, trial.log_sign = compiled, 0
        except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
            say(f"log-space formula failed: {exc}")
            return trial
        trial.formulas = [expr]
    else:
        formula = model_formula(model, data.x_train, data.y_train, snap=spec.discover.snap,
                                allow_numeric=not trial.report.complete)  # fmt: skip
        trial.formulas, trial.numeric_edges = formula.expressions, formula.numeric_edges
        with torch.no_grad():
            trial.model_test_rmse = float(((model(data.x_test) - data.y_test) ** 2).mean().sqrt())
        trial.test_rmse = trial.model_test_rmse
    if trial.complete:
        trial.test_rmse = formula_test_rmse(trial.formulas, data)
    trial.rel_error = rel_error(trial.test_rmse, data.y_test)
    return trial


def _run_s2kan(cand: _Candidate, spec: ProblemSpec, data: Dataset, say: Reporter) -> Trial:
    """``[model] kind = "s2kan"``: the structure is fitted by an S2KAN whose MDL gates pick
    each edge's terms (see :mod:`physkan.s2kan`); no separate symbolic stage."""
    from physkan.strategies.s2kan_fit import fit_s2kan

    width = cand.width or spec.model.width or [len(data.inputs), len(data.outputs)]
    say(f"training S2KAN {cand.label}: {width}")
    res = fit_s2kan(spec, data, width, log_space=cand.log_space, warmup_gate=SPLINE_GATE)
    trial = Trial(cand.label, res.model, formulas=res.formulas, numeric_edges=res.spline_edges,
                   report=S2KANReport.of(res.model))  # fmt: skip
    trial.model_test_rmse = trial.test_rmse = res.test_rmse
    trial.mdl = res.description_length.metrics()
    if trial.complete:
        trial.test_rmse = formula_test_rmse(trial.formulas, data)
        if cand.log_space:  # the law as a model in y-space, not the log-space network
            trial.model = compiled_formula(spec, data, trial.formulas[0]) or res.model
    trial.rel_error = rel_error(trial.test_rmse, data.y_test)
    say(f"S2KAN {cand.label}: {'closed form' if trial.complete else 'splines kept'}, "
        f"relative test RMSE {trial.rel_error:.1e}, description length {res.description_length.total_bits:.0f} bits")  # fmt: skip
    return trial


def discover_regression(spec: ProblemSpec, data: Dataset, say: Reporter) -> Discovery:
    """Occam structure search with an early exit on an exact symbolic fit; verify."""
    best: Trial | None = None
    budget = current_budget()
    exact_rel = exact_rel_tolerance(spec.data.noise)
    for cand in _regression_candidates(spec, data):
        if best is not None and budget.check():
            say(f"time budget spent: keeping the best formula so far ({best.label})")
            break
        torch.manual_seed(spec.model.seed)
        trial = _run_candidate(cand, spec, data, say)
        if trial is None:
            continue
        offer_trial(trial)
        if better(trial, best):
            best = trial
        if trial.complete and trial.rel_error < exact_rel:
            say(f"{cand.label}: exact symbolic fit (relative test RMSE {trial.rel_error:.1e})")
            break
    assert best is not None
    if not best.formulas and best.model is not None:  # no symbolic stage reached: export the network
        formula = model_formula(best.model, allow_numeric=True, snap=False)
        best.formulas, best.numeric_edges = formula.expressions, formula.numeric_edges
        if best.log_sign:  # the network is of log|y|
            best.formulas = [best.log_sign * sympy.exp(e) for e in best.formulas]
    tolerance = exact_rel * (float(data.y_test.std()) or 1.0)
    denoise_answer(best, spec, data, tolerance, say)
    choose_simplest(best, spec, data, tolerance, say)
    metrics = {"model_test_rmse": best.model_test_rmse, "test_rmse": best.test_rmse}
    metrics.update(best.mdl)
    recovered, why = _check_regression(spec, best.formulas, data)
    return Discovery(
        problem=spec.name, type=spec.type, variables=data.inputs, outputs=data.outputs,
        formulas=best.formulas, recovered=recovered, recovery=why, metrics=metrics,
        seconds=0.0, model=best.model, numeric_edges=best.numeric_edges,
        symbolic_report=(best.report.summary() if best.report else "no symbolic stage")
        + f"\nstructure: {best.label}",
    )  # fmt: skip


def _check_regression(spec: ProblemSpec, found: list[sympy.Expr], data: Dataset) -> tuple[bool | None, str]:
    from physkan.problems.physics_makers import truth_expressions

    truths = truth_expressions(spec)
    if not truths:
        return None, "no ground truth"
    if any(f.atoms(sympy.core.function.AppliedUndef) for f in found):
        return False, "some edges stayed splines, so the formula is not closed-form"
    ranges = sample_ranges(spec, data.inputs)
    reasons = []
    ok = True
    for name, f, t in zip(data.outputs, found, truths):
        eq = equivalent(f, t, data.inputs, ranges)
        ok &= eq.equivalent
        reasons.append(f"{name}: {eq.reason}")
    return ok, "; ".join(reasons)
