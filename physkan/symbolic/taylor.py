"""Library functions used in their Taylor regime, replaced by the polynomial they imitate.

A fit can reach a polynomial through a transcendental function whose argument hardly moves:
``6.47·cos(0.0264·x) - 6.59`` is ``-0.00226·x² - 0.12`` to about 1e-4 of its variation for
``x`` in ``[-1, 1]``. Such a term describes the polynomial, not the function. :func:`taylor_regime`
replaces every such application by its Taylor polynomial around the middle of its argument's
range, so that an exact test (a symbolic conservation check, say) can see the polynomial.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import sympy

__all__ = ["TAYLOR_FUNCTIONS", "taylor_regime"]

#: functions whose Taylor series around any real point converges on a neighbourhood of it
TAYLOR_FUNCTIONS: tuple[type, ...] = (sympy.sin, sympy.cos, sympy.exp, sympy.tanh, sympy.sinh, sympy.cosh, sympy.atan)


def _argument_range(
    arg: sympy.Expr, ranges: Mapping[str, tuple[float, float]], points: int
) -> tuple[float, float] | None:
    """``(min, max)`` of ``arg`` over a grid of ``points`` per variable on the box ``ranges``
    (``None`` if a variable has no range or a value is not a finite real)."""
    symbols = sorted(arg.free_symbols, key=lambda s: s.name)
    if any(s.name not in ranges for s in symbols):
        return None
    axes = [[ranges[s.name][0] + (ranges[s.name][1] - ranges[s.name][0]) * k / (points - 1) for k in range(points)]
            for s in symbols]  # fmt: skip
    fn = sympy.lambdify(symbols, arg, modules="math")
    values = []
    for point in itertools.product(*axes):
        try:
            v = complex(fn(*point))
        except (ValueError, ZeroDivisionError, OverflowError, TypeError):
            return None
        if v.imag != 0 or not math.isfinite(v.real):
            return None
        values.append(v.real)
    return min(values), max(values)


def _polynomial(func: type, u0: float, half: float, order: int) -> sympy.Expr:
    """Taylor polynomial of ``func`` around ``u0`` in a dummy ``t`` (returned with it as
    ``poly.subs(t, u - u0)`` by the caller), without the terms smaller over ``|t| <= half``
    than the truncation error ``half**(order+1) / (order+1)!·max(1, |f(u0)|)``."""
    t = sympy.Dummy("t")
    series = sympy.series(func(sympy.Float(u0) + t), t, 0, order + 1).removeO()
    scale = max(1.0, abs(float(func(sympy.Float(u0)))))
    floor = half ** (order + 1) / math.factorial(order + 1) * scale
    poly = sympy.Poly(series, t)
    kept = sum(
        (sympy.Float(float(c)) * t**k for (k,), c in poly.terms() if k == 0 or abs(float(c)) * half**k > floor),
        sympy.Integer(0),
    )
    return sympy.Lambda(t, kept)


def taylor_regime(
    expr: sympy.Expr,
    ranges: Mapping[str, tuple[float, float]],
    *,
    width: float = 0.1,
    order: int = 2,
    points: int = 9,
) -> sympy.Expr:
    """``expr`` with each ``f(u)`` (``f`` in :data:`TAYLOR_FUNCTIONS`) whose argument spans less
    than ``width`` over the box ``ranges`` (variable name → ``(low, high)``, sampled on a grid of
    ``points`` per variable, at most 3 variables) replaced by its Taylor polynomial of degree
    ``order`` in ``u - u0`` around the middle ``u0`` of that span (terms below the truncation
    error dropped). Every other part of ``expr`` is unchanged."""
    replace: dict[sympy.Expr, sympy.Expr] = {}
    for app in expr.atoms(*TAYLOR_FUNCTIONS):
        (arg,) = app.args
        if not arg.free_symbols or len(arg.free_symbols) > 3 or arg.atoms(*TAYLOR_FUNCTIONS):
            continue
        span = _argument_range(arg, ranges, points)
        if span is None or span[1] - span[0] >= width:
            continue
        u0 = (span[0] + span[1]) / 2
        half = (span[1] - span[0]) / 2
        poly = _polynomial(app.func, u0, half, order)
        const, rest = sympy.expand(arg - sympy.Float(u0)).as_coeff_Add()
        shift = rest if abs(float(const)) <= 1e-9 * half else const + rest  # rounding of u0
        replace[app] = sympy.expand(poly(shift))
    return expr.xreplace(replace) if replace else expr
