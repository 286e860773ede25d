"""Composite edge functions: ``f(alpha * h(x) + beta)`` for two library functions.

Some edges are a library function of another one, e.g. the relativistic kinetic term
``-sqrt(1 - q_dot^2)`` = sqrt after x^2. One affine-fitted function cannot express that.
:func:`fit_composition` searches pairs ``(f, h)``; a hit becomes a *composite* symbolic
function whose name is its formula in ``x`` (``"sqrt(1 - x**2)"``), so models that use it
save, load and export like any other (``get_symbolic`` builds it back from the name).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import sympy
import torch
from torch import Tensor

from physkan.budget import current_budget
from physkan.symbolic.fit import affine_fit, score_candidate
from physkan.symbolic.library import SymbolicFunction

__all__ = ["CompositeFit", "composite_function", "fit_composition"]

X = sympy.Symbol("x", real=True)
_CACHE: dict[str, SymbolicFunction] = {}


def composite_function(text: str) -> SymbolicFunction | None:
    """A :class:`SymbolicFunction` from a formula in ``x`` (``None`` if it is not one).

    Only the names of library functions, numbers and ``x`` may appear.
    """
    if text in _CACHE:
        return _CACHE[text]
    from physkan.symbolic.parse import lambdify_torch, parse_expression

    try:
        expr = parse_expression(text, ["x"])
    except ValueError:
        return None
    if expr.free_symbols != {X} and {s.name for s in expr.free_symbols} != {"x"}:
        return None
    sym = next(iter(expr.free_symbols))
    expr = expr.subs(sym, X)
    evaluate = lambdify_torch(expr, ["x"])

    def torch_fn(u: Tensor) -> Tensor:
        return evaluate(u.reshape(-1, 1)).reshape(u.shape)

    fn = SymbolicFunction(
        name=text,
        torch_fn=torch_fn,
        sympy_fn=lambda arg, _e=expr: _e.subs(X, arg),
        complexity=int(sympy.count_ops(expr)) + 1,
        description=f"composite {expr}",
    )
    _CACHE[text] = fn
    return fn


@dataclass(frozen=True)
class CompositeFit:
    """``y ≈ c * f(alpha * h(x) + beta) + d`` with snapped ``alpha, beta``."""

    name: str
    c: float
    d: float
    r2: float
    score: float


def fit_composition(
    x: Tensor,
    y: Tensor,
    library: Mapping[str, SymbolicFunction],
    *,
    r2_threshold: float = 0.999,
    weight_simple: float = 0.8,
    min_score: float | None = None,
) -> CompositeFit | None:
    """Best composite ``f(alpha h(x) + beta)`` over library pairs, or ``None`` below ``r2_threshold``.

    ``x, y``: ``(N,)`` pre- and post-activations of one edge. The inner constants are snapped
    to simple numbers and the outer ``c, d`` refit by least squares, so the name is exact.
    ``min_score``: the score a composite must beat (e.g. the best single function's); a pair
    that cannot beat it, or the best composite so far, even with ``r2 = 1`` is not fitted (a
    composite's score is :func:`score_candidate` of its r² and ``f.complexity + h.complexity``),
    so the answer is the same as without the bound, or ``None`` where no composite beats it.
    Stops early (best so far) once :func:`physkan.budget.current_budget` has expired.
    """
    from physkan.symbolic.fit import fit_coefficients_closed_form
    from physkan.symbolic.simplify import snap_value

    x64, y64 = x.double().reshape(-1), y.double().reshape(-1)
    best: CompositeFit | None = None
    inner = [h for h in library.values() if h.name not in ("0", "x")]
    outer = [f for f in library.values() if f.name not in ("0", "x")]
    budget = current_budget()  # once spent: the best composite so far

    def can_win(f: SymbolicFunction, h: SymbolicFunction) -> bool:
        bound = score_candidate(1.0, f.complexity + h.complexity, weight_simple)
        floor = max(-math.inf if min_score is None else min_score, -math.inf if best is None else best.score)
        return bound > floor

    for h in inner:
        if not any(can_win(f, h) for f in outer):
            continue
        u = h.torch_fn(x64)
        if not torch.isfinite(u).all() or float(u.std()) < 1e-9:
            continue
        for f in outer:
            if budget.check():
                return best
            if not can_win(f, h):
                continue
            fit = affine_fit(u, y64, f)
            if fit.r2 < r2_threshold:
                continue
            alpha = snap_value(fit.a, tolerance=1e-3) or sympy.Float(fit.a, 6)
            beta = snap_value(fit.b, tolerance=1e-3, zero_threshold=1e-6) or sympy.Float(fit.b, 6)
            # For power-like f, f(k v) = g(k) f(v): try pulling the inner scale out into c.
            found = None
            for k in {sympy.Integer(1), abs(alpha), abs(beta)} - {sympy.Integer(0)}:
                expr = f.sympy_fn((alpha * h.sympy_fn(X) + beta) / k)
                comp = composite_function(str(expr))
                if comp is None:
                    continue
                values = comp.torch_fn(x64)
                c, d, r2 = fit_coefficients_closed_form(values[None, :], y64)
                key = (round(float(r2), 9), -int(sympy.count_ops(expr)))
                if found is None or key > found[0]:
                    found = (key, comp, float(c), float(d), float(r2))
            if found is None or found[4] < r2_threshold:
                continue
            _, comp, c, d, r2 = found
            score = score_candidate(r2, f.complexity + h.complexity, weight_simple)
            if best is None or score > best.score:
                best = CompositeFit(comp.name, float(c), float(d), r2, score)
    return best
