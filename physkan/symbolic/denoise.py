"""The simplest formula that noisy data allow: snap constants, and replace long one-variable
parts by library functions.

On noisy targets a search can return the right structure with a long stand-in for one of
its parts: ``asin(n*theta2*P(theta2)/Q(theta2))`` with polynomials ``P``, ``Q`` where the
truth is ``asin(n*sin(theta2))`` (a rational approximant fits ``sin`` to within the noise).
:func:`denoise_formula` snaps the constants (:func:`~physkan.symbolic.snap_noise.snap_to_noise`),
after trying, for every part of a product or sum that depends on one variable only and holds at
least :data:`MIN_FLOATS` constants, fits the library's functions ``c·f(a·x + b) + d`` to
that part's values, putting the best few in its place and snapping. A replacement is kept
when it is simpler (:func:`~physkan.symbolic.pareto.complexity`) and its squared error
exceeds the original's best refit by no more than a chi-square law allows (one degree of
freedom per constant it has fewer, at least one).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence

import numpy as np
import sympy
import torch

from physkan.symbolic.fit import suggest_symbolic
from physkan.symbolic.pareto import complexity
from physkan.symbolic.parse import lambdify_arrays
from physkan.symbolic.snap_noise import ALPHA, NoiseSnap, snap_to_noise

__all__ = ["MIN_FLOATS", "denoise_formula", "one_variable_parts"]

#: A one-variable part needs at least this many float constants to be worth replacing.
MIN_FLOATS = 3
#: Library functions tried in place of each part (the best-ranked ones).
TOP_FUNCTIONS = 2
#: The functions a part may become (the one-variable laws of physics formulas; powers and
#: polynomials are what the parts already are).
STAND_IN_LIBRARY: tuple[str, ...] = ("sin", "cos", "exp", "log", "sqrt", "tanh", "arctan", "gaussian", "x^2", "1/x")

VariableLike = str | sympy.Symbol


def one_variable_parts(expr: sympy.Expr, min_floats: int = MIN_FLOATS) -> Iterator[tuple[sympy.Expr, sympy.Expr, sympy.Symbol]]:
    """``(node, part, symbol)`` for every product/sum ``node`` of ``expr`` whose arguments
    depending on ``symbol`` alone multiply/add up to ``part``, which holds at least
    ``min_floats`` floats (outermost nodes first)."""
    for node in sympy.preorder_traversal(sympy.sympify(expr)):
        if not isinstance(node, (sympy.Mul, sympy.Add)):
            continue
        groups: dict[sympy.Symbol, list[sympy.Expr]] = {}
        for arg in node.args:
            syms = arg.free_symbols
            if len(syms) == 1:
                groups.setdefault(next(iter(syms)), []).append(arg)  # type: ignore[arg-type]
        for sym, args in groups.items():
            part = node.func(*args)
            if len(part.atoms(sympy.Float)) >= min_floats:
                yield node, part, sym


def _replaced(expr: sympy.Expr, node: sympy.Expr, part: sympy.Expr, new: sympy.Expr) -> sympy.Expr:
    """``expr`` with ``part`` (some arguments of ``node``) replaced by ``new``."""
    taken = set(part.args) if part.func == node.func else {part}
    rest = [a for a in node.args if a not in taken]
    return expr.xreplace({node: node.func(*rest, new)})


def _stand_ins(part: sympy.Expr, sym: sympy.Symbol, X: np.ndarray, column: int, library) -> list[sympy.Expr]:
    """The best-ranked library fits ``c·f(a·x + b) + d`` of ``part``'s values on the data."""
    x = X[:, column]
    values = lambdify_arrays(part, [sym])(x)
    if not np.all(np.isfinite(values)):
        return []
    # a coarse fit is enough: the snapping refits every constant of the new formula
    ranked = suggest_symbolic(torch.from_numpy(x), torch.from_numpy(values), library, topk=TOP_FUNCTIONS,
                              grid_number=31, iterations=2, refine=False)  # fmt: skip
    return [c.fit.to_sympy(sym) for c in ranked if c.fit.c != 0.0 and math.isfinite(c.fit.r2)]


def denoise_formula(
    expr: sympy.Expr,
    variables: Sequence[VariableLike],
    X,
    y,
    *,
    noise: float,
    library: Sequence[str] | None = None,
    alpha: float = ALPHA,
    seconds: float = 3.0,
) -> NoiseSnap:
    """Snap ``expr``'s constants to the noise and replace long one-variable parts (module
    docstring) on ``X (N, n_vars)``, ``y (N,)`` with relative noise ``noise`` (> 0). The
    replacements are tried first (their formulas have fewer constants to snap).

    ``library``: function names for the replacements (``None``: :data:`STAND_IN_LIBRARY`;
    otherwise those of them in ``library``).
    Stops after ``seconds`` (and when the time budget in force expires)."""
    from scipy.stats import chi2  # scipy loads on first use (CLI start-up)

    start = time.perf_counter()
    base = snap_to_noise(expr, variables, X, y, noise=noise, alpha=alpha, seconds=0.0)  # the refit only
    if not math.isfinite(base.sse0):
        return base
    Xa = X.detach().double().numpy() if isinstance(X, torch.Tensor) else np.asarray(X, dtype=np.float64)
    names = [v.name if isinstance(v, sympy.Symbol) else str(v) for v in variables]
    sigma2 = base.sigma**2
    functions = [f for f in STAND_IN_LIBRARY if library is None or f in library]
    for node, part, sym in list(one_variable_parts(base.expr)):
        if sym.name not in names:
            continue
        for new in _stand_ins(part, sym, Xa, names.index(sym.name), functions):
            left = seconds - (time.perf_counter() - start)
            if left <= 0:
                return base
            got = snap_to_noise(_replaced(base.expr, node, part, new), variables, X, y, noise=noise,
                                alpha=alpha, seconds=left)  # fmt: skip
            dof = max(1, base.n_constants - (got.n_constants - got.snapped))
            if (complexity(got.expr) < complexity(base.expr) and math.isfinite(got.sse)
                    and (got.sse - base.sse0) / sigma2 <= chi2.isf(alpha, dof)):  # fmt: skip
                return got
    left = seconds - (time.perf_counter() - start)
    return snap_to_noise(expr, variables, X, y, noise=noise, alpha=alpha, seconds=left) if left > 0 else base
