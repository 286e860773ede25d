"""Product separability for the regression strategy: ``y = K·prod_i g_i(x_i)``, any sign.

This is the multiplication-node structure ``[n_in, [0, 1], 1]`` of a MultKAN (one
``n_in``-ary product node, each of its inputs fed by a single variable's edge), fitted by
alternating least squares: with all factors but ``g_k`` fixed the model is linear in
``g_k``'s coefficients (a Chebyshev basis on the variable's range), so each sweep is a
handful of small least-squares solves. Unlike the ``log|y|`` path it works when ``y``
changes sign (``m·r·v·sin(theta)``). Each factor is then made symbolic (library fit
``f(a·x + b) + e``, snapped) and the prefactor ``K`` is refitted; the formula counts as
found only when it fits the data to near machine precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sympy
import torch
from torch import Tensor

from physkan.strategies.logsep import SCALE_FREE, SNAP_CONSTANTS
from physkan.symbolic.fit import suggest_symbolic
from physkan.symbolic.library import get_symbolic
from physkan.symbolic.simplify import DEFAULT_CONSTANTS, clean_formula, snap_value

__all__ = ["ProductFit", "product_formula", "rank1_fit"]


@dataclass
class ProductFit:
    """A rank-one fit: factor values on the samples and the relative training error."""

    factors: list[Tensor]  # (N,) per input
    rel_error: float


def _chebyshev(x: Tensor, lo: float, hi: float, degree: int) -> Tensor:
    t = (2 * x - lo - hi) / ((hi - lo) or 1.0)
    cols = [torch.ones_like(t), t]
    for _ in range(degree - 1):
        cols.append(2 * t * cols[-1] - cols[-2])
    return torch.stack(cols[: degree + 1], 1)


def rank1_fit(x: Tensor, y: Tensor, *, degree: int = 16, sweeps: int = 40, tol: float = 1e-12) -> ProductFit:
    """Alternating least squares for ``y ≈ prod_i g_i(x_i)`` with polynomial ``g_i``."""
    x, y = x.double(), y.double().reshape(-1)
    n = x.shape[1]
    bases = [_chebyshev(x[:, i], float(x[:, i].min()), float(x[:, i].max()), degree) for i in range(n)]
    factors = [torch.ones_like(y) for _ in range(n)]
    scale = float(y.std()) or 1.0
    rel = float("inf")
    for _ in range(sweeps):
        for k in range(n):
            w = torch.ones_like(y)
            for i in range(n):
                if i != k:
                    w = w * factors[i]
            A = bases[k] * w[:, None]
            coef = torch.linalg.lstsq(A, y[:, None]).solution.reshape(-1)
            g = bases[k] @ coef
            norm = float(g.abs().max()) or 1.0
            factors[k] = g / norm
        pred = torch.ones_like(y)
        for g in factors:
            pred = pred * g
        k_fit = float((pred @ y) / (pred @ pred)) if float(pred @ pred) > 0 else 0.0
        new_rel = float((k_fit * pred - y).pow(2).mean().sqrt()) / scale
        if abs(rel - new_rel) < tol * max(rel, 1e-300) or new_rel < 1e-13:
            rel = new_rel
            break
        rel = new_rel
    return ProductFit(factors, rel)


def _snap(value: float, tolerance: float, constants: Sequence[sympy.Expr] = ()) -> sympy.Expr:
    """The simplest number near ``value``, trying tight tolerances first (pi/2 before 11/7)."""
    for tol in (1e-9, 1e-7, 1e-5, 1e-4, 1e-3):
        if tol > tolerance:
            break
        s = snap_value(value, tolerance=tol, constants=constants)
        if s is not None:
            return s
    return sympy.Float(value)


def _factor_expr(xi: Tensor, gi: Tensor, symbol: sympy.Symbol, library) -> tuple[sympy.Expr, Tensor] | None:
    """``f(a·x + b) + e`` (snapped) for one factor, with its values on the samples."""
    if float(gi.std()) <= 1e-10 * (float(gi.abs().mean()) or 1.0):
        return sympy.Integer(1), torch.ones_like(gi)
    ranked = suggest_symbolic(xi, gi, library, topk=1)
    if not ranked:
        return None
    fit = ranked[0].fit
    fn = get_symbolic(fit.name)
    if fit.name in SCALE_FREE:  # f(a·x + b) ∝ f(x + b/a): the scale goes into alpha
        options = [(sympy.Integer(1), sympy.Integer(0)), (sympy.Integer(1), _snap(fit.b / fit.a, 1e-3))]
    else:
        a = _snap(fit.a, 1e-4, DEFAULT_CONSTANTS)
        options = [(a, sympy.Integer(0)), (a, _snap(fit.b, 1e-3, (sympy.pi,)))]
    best = None
    for a, b in options:
        f_vals = fn.torch_fn(float(a) * xi + float(b))
        A = torch.stack([f_vals, torch.ones_like(f_vals)], 1)
        sol = torch.linalg.lstsq(A, gi[:, None]).solution.reshape(-1)
        resid = float((A @ sol - gi).pow(2).mean().sqrt())
        if best is None or resid < best[0] * 0.5:
            best = (resid, a, b, f_vals, sol.tolist())
    assert best is not None
    _, a, b, f_vals, (alpha, beta) = best
    if alpha == 0.0:
        return None
    e_raw = beta / alpha
    e = sympy.Integer(0) if abs(e_raw) < 1e-6 * (float(f_vals.abs().mean()) or 1.0) else _snap(e_raw, 1e-4)
    expr = fn.sympy_fn(a * symbol + b) + e
    return expr, f_vals + float(e)


def product_formula(
    x: Tensor,
    y: Tensor,
    variables: Sequence[str],
    library=None,
    *,
    exact_rel: float = 1e-7,
) -> sympy.Expr | None:
    """The product law ``K·prod_i f_i(x_i)`` when the data are exactly one, else ``None``."""
    x, y = x.double(), y.double().reshape(-1)
    fit = rank1_fit(x, y)
    if fit.rel_error > 1e-4:  # not a product (the exact check comes after the symbolic step)
        return None
    symbols = [sympy.Symbol(v, real=True) for v in variables]
    expr: sympy.Expr = sympy.Integer(1)
    pred = torch.ones_like(y)
    for i, g in enumerate(fit.factors):
        got = _factor_expr(x[:, i], g, symbols[i], library)
        if got is None:
            return None
        expr, pred = expr * got[0], pred * got[1]
    if not bool(torch.isfinite(pred).all()) or float(pred @ pred) == 0.0:
        return None
    k = float((pred @ y) / (pred @ pred))
    rel = float((k * pred - y).pow(2).mean().sqrt()) / (float(y.std()) or 1.0)
    if rel > exact_rel:
        return None
    return clean_formula(_snap(k, 1e-7, SNAP_CONSTANTS) * expr)
