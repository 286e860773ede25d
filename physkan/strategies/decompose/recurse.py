"""KAN-guided recursive decomposition (AI Feynman with a KAN surrogate).

``decompose_regression`` works on raw arrays so that it can recurse. At a node with
variables ``x (N, n)`` and target ``y (N,)``:

0. the network-free tests of :mod:`.cheap` (rational and product laws of ``T(y)`` for the
   invertible outer functions ``T``) on the node's own data;
1. ``n <= 2``: a leaf (:func:`~physkan.strategies.decompose.leaves.fit_leaf`, dictionary
   regression with invertible outer transforms, constants snapped on the data);
2. otherwise a float64 KAN surrogate is fitted once (:mod:`.surrogate`) and its autograd
   derivatives are tested, cheapest first (:mod:`physkan.interpret.modularity`):
   unused inputs (dropped); pair symmetries ``x_i ∓ x_j``, ``x_i x_j``, ``x_i / x_j``
   (disjoint pairs replaced by one new variable each, on the raw data); additive, then
   multiplicative separability (each part tabulated by the surrogate with the other
   variables at their medians, solved recursively, then all coefficients refitted on the
   raw data); invertible outer functions ``T`` whose ``T∘f`` is additively separable
   (recursion on ``T(y)``, then ``T⁻¹``).

Every candidate a step produces is accepted only when it fits the node's held-out data
(relative RMSE ``<= tol``); the recursion stops when the time budget in force
(:func:`physkan.budget.current_budget`) runs out and returns ``None`` (nothing half-made).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import sympy
import torch
from torch import Tensor

from physkan.budget import Budget, current_budget
from physkan.interpret.modularity import input_attribution, pair_symmetry_scores, separability
from physkan.linalg import lstsq
from physkan.strategies.decompose.cheap import cheap_candidates
from physkan.strategies.decompose.leaves import TRANSFORMS, fit_leaf, transforms_for
from physkan.strategies.decompose.noise import propagate_sigma
from physkan.strategies.decompose.surrogate import fit_surrogate
from physkan.symbolic.pareto import offer
from physkan.symbolic.simplify import clean_formula, current_noise, formula_error, snap_to_data

__all__ = ["decompose_regression", "fits_held_out"]

_log = logging.getLogger(__name__)

#: Relative test RMSE of an exact law (as in the regression strategy).
EXACT_TOL = 1e-6
#: Surrogates worse than this (relative test RMSE) are not used for any test.
SURROGATE_GATE = 3e-2
#: Pair-symmetry violations below this (or 3x the node's threshold) count as a symmetry.
SYMMETRY_GATE = 0.1
#: A pair symmetry's score must be below this fraction of the pair's other kinds' scores.
SYMMETRY_MARGIN = 0.5
#: Deepest recursion.
MAX_DEPTH = 4
_COMBINE = {"diff": lambda a, b: a - b, "sum": lambda a, b: a + b, "prod": lambda a, b: a * b,
            "ratio": lambda a, b: a / b}  # fmt: skip


@dataclass
class _Node:
    x: Tensor  # (N, n) training inputs
    y: Tensor  # (N,)
    xt: Tensor  # (M, n) held-out inputs
    yt: Tensor  # (M,)
    names: list[str]
    tol: float  # relative held-out RMSE a formula of this node must reach
    depth: int = 0
    library: list[str] | None = None  # the problem's symbolic library ([discover].library)
    squared: bool = False  # y is the square of an ancestor's target (see _squared)
    skip_cheap: bool = False  # the network-free tests already ran on exactly these data
    sigma: Tensor | None = None  # (N,) noise std of each sample of y (noisy data), None: exact/table


def _rel_err(expr: sympy.Expr | None, names: Sequence[str], x: Tensor, y: Tensor) -> float:
    if expr is None:
        return math.inf
    try:
        err = formula_error(expr, names, x, y)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, KeyError):
        return math.inf
    return err / (float(y.std()) or 1.0) if err == err else math.inf


def fits_held_out(expr: sympy.Expr | None, names: Sequence[str], x: Tensor, y: Tensor, tol: float) -> sympy.Expr | None:
    """``expr`` (cleaned) when it fits ``(x (M, n), y (M,))`` to relative RMSE ``tol``, else ``None``."""
    expr = None if expr is None else _clean(expr)
    return expr if _rel_err(expr, names, x, y) <= tol else None


def _ok(expr: sympy.Expr | None, node: _Node) -> sympy.Expr | None:
    """``expr`` when it fits the node's held-out data to ``node.tol``, else ``None``."""
    return expr if _rel_err(expr, node.names, node.xt, node.yt) <= node.tol else None


def _train_rtol(tol: float) -> float:
    """Relative training RMSE a law of a node with held-out tolerance ``tol`` may show: on
    noisy (or surrogate-tabulated) data the training targets carry the noise themselves."""
    return tol * 1.5 if tol > EXACT_TOL else tol


def _clean(expr: sympy.Expr) -> sympy.Expr | None:
    try:
        return clean_formula(expr)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None


def _solve(node: _Node, budget: Budget) -> sympy.Expr | None:
    if budget.check():
        return None
    n = len(node.names)
    rtol = _train_rtol(node.tol)
    cands = () if node.skip_cheap else cheap_candidates(node.x, node.y, node.names, rtol=rtol, library=node.library,
                                                         sigma=node.sigma, noise=0.0)  # fmt: skip
    for cand in cands:
        got = _ok(_clean(cand), node)
        if got is not None:
            _log.debug("depth %d %s: network-free law %s", node.depth, node.names, got)
            return got
    if budget.check():
        return None
    if n <= 2:
        return _ok(fit_leaf(node.x, node.y, node.names, rtol=max(rtol / 10, 1e-9)), node)
    if node.depth >= MAX_DEPTH:
        return None
    sur = fit_surrogate(node.x, node.y, node.xt, node.yt, seconds=min(20.0, 0.3 * budget.remaining()))
    _log.debug("depth %d %s: surrogate rel error %.1e", node.depth, node.names, sur.rel_error)
    if sur.rel_error > SURROGATE_GATE:
        _log.debug("depth %d: surrogate too coarse (%.1e), trying y**2", node.depth, sur.rel_error)
        return None if budget.check() else _squared(node, budget)
    if budget.check():
        return None
    thr = max(2e-2, 10 * sur.rel_error)
    for step in (_drop_unused, _symmetry, _separable, _outer):
        expr = step(node, sur, thr, budget)
        if expr is not None or budget.check():
            return expr
    return None


def _child(node: _Node, x: Tensor, y: Tensor, xt: Tensor, yt: Tensor, names: list[str],
           tol: float | None = None, sigma: Tensor | None = None) -> _Node:  # fmt: skip
    """A child node; ``sigma (N,)``: the noise std of its ``y`` (``None``: exact or a table)."""
    return _Node(x, y, xt, yt, names, node.tol if tol is None else tol, node.depth + 1, node.library, sigma=sigma)


def _squared(node: _Node, budget: Budget) -> sympy.Expr | None:
    """A one-signed ``y`` whose surrogate is too coarse (a cone such as a distance has a kink
    a spline cannot follow) is solved as ``y²``, which is smooth there: ``y = ±sqrt(y²)``."""
    sign = 1 if float(node.y.min()) > 0 else -1 if float(node.y.max()) < 0 else 0
    if sign == 0 or node.squared:
        return None
    sigma = None if node.sigma is None else 2 * node.y.abs() * node.sigma
    child = _child(node, node.x, node.y**2, node.xt, node.yt**2, node.names, sigma=sigma)
    child.squared = True
    got = _solve(child, budget)
    return None if got is None else _ok(_clean(sign * sympy.sqrt(got)), node)


def _drop_unused(node: _Node, sur, thr: float, budget: Budget) -> sympy.Expr | None:
    """Inputs with attribution ~0 are dropped; the rest is solved on the raw data."""
    att = input_attribution(sur, node.x)
    keep = [i for i, a in enumerate(att.tolist()) if a > thr / 2]
    if not keep or len(keep) == len(node.names):
        return None
    child = _child(node, node.x[:, keep], node.y, node.xt[:, keep], node.yt, [node.names[i] for i in keep],
                   sigma=node.sigma)  # fmt: skip
    return _ok(_solve(child, budget), node)


def _symmetry(node: _Node, sur, thr: float, budget: Budget) -> sympy.Expr | None:
    """Disjoint pairs with a symmetry (best first) become one variable each. Gradient ratios
    of a surrogate are less accurate than its values, hence the looser threshold."""
    thr = max(SYMMETRY_GATE, 3 * thr)
    all_scores = pair_symmetry_scores(sur, node.x)
    scores = sorted((s, key) for key, s in all_scores.items() if s < thr and _distinct(key, s, all_scores))
    # one pair at a time (the clearest); the child node tests the other pairs again
    chosen = [scores[0][1]] if scores else []
    used = set(chosen[0][:2]) if chosen else set()
    _log.debug("symmetries %s (scores %s)", chosen, scores[:4])
    if not chosen:
        return None
    rest = [k for k in range(len(node.names)) if k not in used]
    syms = [sympy.Symbol(v, real=True) for v in node.names]
    new_names = [f"u{node.depth}_{k}" for k in range(len(chosen))]
    while any(v in node.names for v in new_names):
        new_names = ["_" + v for v in new_names]

    def columns(x: Tensor) -> Tensor:
        cols = [_COMBINE[kind](x[:, i], x[:, j]) for i, j, kind in chosen]
        return torch.stack(cols + [x[:, k] for k in rest], 1)

    names = new_names + [node.names[k] for k in rest]
    got = _solve(_child(node, columns(node.x), node.y, columns(node.xt), node.yt, names, sigma=node.sigma), budget)
    if got is None:
        return None
    back = {sympy.Symbol(u, real=True): _COMBINE[kind](syms[i], syms[j]) for u, (i, j, kind) in zip(new_names, chosen)}
    return _ok(clean_formula(got.xreplace(back)), node)


def _distinct(key: tuple[int, int, str], score: float, scores: dict) -> bool:
    """A pair's symmetry counts only when it is clearly better (by :data:`SYMMETRY_MARGIN`)
    than the pair's other kinds: a coarse surrogate passes several kinds about equally."""
    i, j, kind = key
    others = [v for (a, b, k), v in scores.items() if (a, b) == (i, j) and k != kind]
    return not others or score <= SYMMETRY_MARGIN * min(others)


def _parts(expr: sympy.Expr) -> list[sympy.Expr]:
    """The terms of ``expr`` without their numeric coefficients (a constant becomes ``1``)."""
    out = []
    for term in sympy.Add.make_args(sympy.expand(expr) if expr.is_Add else expr):
        _, rest = term.as_coeff_Mul()
        if rest not in out:
            out.append(rest)
    return out


def _refit(groups: list[list[sympy.Expr]], mode: str, node: _Node) -> sympy.Expr | None:
    """Coefficients of ``sum_k sum_t a_kt T_kt`` (add) or ``prod_k sum_t a_kt T_kt`` (mul)
    by (alternating) least squares on the raw data; snapped; ``None`` if a term is not finite."""
    from physkan.symbolic.parse import lambdify_torch

    y = node.y
    vals = []
    for terms in groups:
        cols = []
        for t in terms:
            v = lambdify_torch(t, node.names)(node.x).reshape(-1) * torch.ones_like(y)
            if not bool(torch.isfinite(v).all()):
                return None
            cols.append(v)
        vals.append(torch.stack(cols, 1))
    if mode == "add":
        a = torch.cat([torch.ones_like(y)[:, None], *vals], 1)
        sol = lstsq(a, y[:, None])[:, 0].tolist()
        flat = [t for terms in groups for t in terms]
        expr = sympy.Float(sol[0]) + sum((sympy.Float(c) * t for c, t in zip(sol[1:], flat)), sympy.Integer(0))
    else:
        coefs = [lstsq(v, torch.ones_like(y)[:, None])[:, 0] for v in vals]
        for _ in range(20):
            for k, v in enumerate(vals):
                w = torch.ones_like(y)
                for j, u in enumerate(vals):
                    if j != k:
                        w = w * (u @ coefs[j])
                coefs[k] = lstsq(v * w[:, None], y[:, None])[:, 0]
        expr = sympy.Integer(1)
        for terms, c in zip(groups, coefs):
            expr = expr * sum((sympy.Float(float(ci)) * t for ci, t in zip(c, terms)), sympy.Integer(0))
    try:
        return clean_formula(snap_to_data(expr, node.names, node.x, node.y, rel_slack=0.5, abs_slack=1e-9))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None


def _separable(node: _Node, sur, thr: float, budget: Budget) -> sympy.Expr | None:
    """Additive, then multiplicative separability. The smaller parts are solved on surrogate
    tables (the other variables at their medians); the largest part is then solved on the raw
    data with the smaller parts peeled off (``y - sum`` or ``y / prod``), exactly, and only if
    that fails on its table too; all coefficients are refitted on the raw data at the end."""
    ref = node.x.median(0).values
    for mode in ("add", "mul"):
        res = separability(sur, node.x, mode, threshold=thr)
        if not res.separable:
            continue
        order = sorted(res.groups, key=len)
        solved: list[tuple[list[int], sympy.Expr]] = []
        for g in order:
            def table(x: Tensor, g: list[int] = g) -> Tensor:
                z = ref.expand(len(x), -1).clone()
                z[:, g] = x[:, g]
                with torch.no_grad():
                    return sur(z)
            if g is order[-1]:
                got = _peel(node, mode, solved, g, budget)
                if got is not None or budget.check():
                    return got
            yp, ypt = table(node.x), table(node.xt)
            tol = min(5e-2, max(node.tol, 5 * sur.rel_error * float(node.y.std()) / (float(yp.std()) or 1.0)))
            sub = _solve(_child(node, node.x[:, g], yp, node.xt[:, g], ypt, [node.names[i] for i in g], tol), budget)
            if sub is None:
                break
            solved.append((g, sub))
        else:
            got = _ok(_refit([_parts(sub) for _, sub in solved], mode, node), node)
            if got is not None:
                return got
        if budget.check():
            return None
    return None


def _peel(node: _Node, mode: str, solved: list[tuple[list[int], sympy.Expr]], last: list[int],
          budget: Budget) -> sympy.Expr | None:  # fmt: skip
    """The last part of a separable law solved on the raw data, the other parts divided out
    (``mul``) or subtracted (``add``); then the whole law, coefficients refitted if needed."""
    from physkan.symbolic.parse import lambdify_torch

    def rest(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor] | None:
        """The rest ``(N,)`` and the factor ``(N,)`` that scales the noise of ``y`` in it."""
        out, scale = y.clone(), torch.ones_like(y)
        for g, sub in solved:
            v = lambdify_torch(sub, [node.names[i] for i in g])(x[:, g]).reshape(-1) * torch.ones_like(y)
            if not bool(torch.isfinite(v).all()) or (mode == "mul" and bool((v == 0).any())):
                return None
            out, scale = (out / v, scale / v.abs()) if mode == "mul" else (out - v, scale)
        return out, scale

    got, gott = rest(node.x, node.y), rest(node.xt, node.yt)
    if got is None or gott is None:
        return None
    (r, scale), rt = got, gott[0]
    names = [node.names[i] for i in last]
    sigma = None if node.sigma is None else node.sigma * scale
    sub = _solve(_child(node, node.x[:, last], r, node.xt[:, last], rt, names, node.tol, sigma), budget)
    if sub is None:
        return None
    subs = [e for _, e in solved] + [sub]
    whole = _ok(_clean(sympy.Mul(*subs) if mode == "mul" else sympy.Add(*subs)), node)
    return whole if whole is not None else _ok(_refit([_parts(e) for e in subs], mode, node), node)


def _outer(node: _Node, sur, thr: float, budget: Budget) -> sympy.Expr | None:
    """``T(y)`` for an invertible ``T`` that makes the law additively separable."""
    base = len(separability(sur, node.x, "add", threshold=thr).groups)
    for transform, sign in transforms_for(node.y):
        if transform is TRANSFORMS[0]:
            continue
        t, tt = transform.forward(node.y), transform.forward(node.yt)
        if not (bool(torch.isfinite(t).all()) and bool(torch.isfinite(tt).all())):
            continue
        res = separability(lambda z, f=transform.forward: f(sur(z)), node.x, "add", threshold=thr)
        if len(res.groups) <= base:
            continue
        got = _solve(_child(node, node.x, t, node.xt, tt, node.names, sigma=propagate_sigma(transform.forward, node.y, node.sigma)), budget)
        if got is not None:
            expr = _ok(clean_formula(transform.inverse(got, sign or 1)), node)
            if expr is not None:
                return expr
        if budget.check():
            return None
    return None


def decompose_regression(
    x: Tensor, y: Tensor, variables: Sequence[str], *, x_test: Tensor, y_test: Tensor,
    seconds: float | None = None, tol: float = EXACT_TOL, library: Sequence[str] | None = None,
    cheap_done: bool = False,
) -> sympy.Expr | None:
    """A closed form of ``y (N,)`` on ``x (N, n)`` (columns named ``variables``) found by
    recursive decomposition, or ``None``.

    The result fits ``(x_test (M, n), y_test (M,))`` to relative RMSE ``<= tol``; it is
    offered to the Pareto front in force. Runs within ``seconds`` (default: the rest of the
    budget in force, at most 120 s). ``library``: the problem's symbolic library (the
    product tests' factor functions; ``None``: the default one). ``cheap_done``: the
    network-free tests (:mod:`.cheap`) already ran on these data, the root skips them.
    """
    x, y = x.double(), y.double().reshape(-1)
    x_test, y_test = x_test.double(), y_test.double().reshape(-1)
    if x.shape[1] != len(variables) or x_test.shape[1] != len(variables):
        raise ValueError(f"variables: {len(variables)} names for inputs of width {x.shape[1]}")
    budget = current_budget().child(seconds=120.0 if seconds is None else seconds)
    torch.manual_seed(0)
    lib = list(library) if library else None
    noise = current_noise()
    sigma = noise * float(y.std()) * torch.ones_like(y) if noise > 0 else None
    root = _Node(x, y, x_test, y_test, list(variables), tol, 0, lib, skip_cheap=cheap_done, sigma=sigma)
    expr = _solve(root, budget)
    if expr is not None:
        offer(expr, formula_error(expr, list(variables), x_test, y_test), "decompose")
    return expr
