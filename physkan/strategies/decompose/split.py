"""Network-free split off one variable: ``y = f1(x_i) + f2(x_i)·prod_{j≠i} g_j(x_j)``.

Two common shapes of physics laws are a product law of all variables but one, combined with
a function of that one: additively (``log(n_0) - m·g·x/(k_b·T)``, the log of
``n_0·exp(-m·g·x/(k_b·T))``) or multiplicatively with an offset
(``n_0·(1 + p·E·cos(θ)/(k_b·T))``). Both are ``f1(x_i) + f2(x_i)·P`` with ``P`` a product
of one-variable factors, which alternating least squares fits with polynomial ``f1, f2,
g_j`` (given ``P`` the model is linear in ``f1, f2``; given ``f1, f2`` and all factors but
``g_k``, linear in ``g_k``). When it fits, ``f2`` constant means an additive split and
``f1 ∝ f2`` a multiplicative one: the one-variable part is made symbolic (sparse library
fit, snapped) and peeled off the raw data (``y - f1`` or ``y / f2``), and the rest is a
product law with an offset (:func:`physkan.strategies.product.product_formula`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence

import sympy
import torch
from torch import Tensor

from physkan.budget import current_budget
from physkan.linalg import lstsq
from physkan.strategies.product import chebyshev_basis, product_formula
from physkan.symbolic.library import resolve_library
from physkan.symbolic.simplify import clean_formula, snap_to_data
from physkan.symbolic.sparse import sparse_fit_1d

__all__ = ["split_candidates", "split_fit"]

#: Relative training error of the polynomial ALS fit under which a split counts as found.
SPLIT_GATE = 1e-3


def _basis(v: Tensor, degree: int) -> Tensor:
    return chebyshev_basis(v, float(v.min()), float(v.max()), degree)


def split_fit(x: Tensor, y: Tensor, i: int, *, degree: int = 12, sweeps: int = 60,
              init_ones: bool = True) -> tuple[Tensor, Tensor, float]:  # fmt: skip
    """ALS for ``y ≈ f1(x_i) + f2(x_i)·prod_{j≠i} g_j(x_j)``: values of ``f1, f2`` ``(N,)``
    and the relative training RMSE. The factors start at 1 (``init_ones``; else at ``x_j``)."""
    n = x.shape[1]
    rest = [j for j in range(n) if j != i]
    bi = _basis(x[:, i], degree)
    bases = {j: _basis(x[:, j], degree) for j in rest}
    factors = {j: torch.ones_like(y) if init_ones else x[:, j] / x[:, j].abs().max() for j in rest}
    f1, f2 = torch.zeros_like(y), torch.ones_like(y)
    scale = float(y.std()) or 1.0
    rel = float("inf")
    for _ in range(sweeps):
        prod = torch.ones_like(y)
        for j in rest:
            prod = prod * factors[j]
        a = torch.cat([bi, bi * prod[:, None]], 1)
        coef = lstsq(a, y[:, None]).reshape(-1)
        f1, f2 = bi @ coef[: bi.shape[1]], bi @ coef[bi.shape[1]:]
        new_rel = float((f1 + f2 * prod - y).pow(2).mean().sqrt()) / scale
        for k in rest:
            w = f2.clone()
            for j in rest:
                if j != k:
                    w = w * factors[j]
            sol = lstsq(bases[k] * w[:, None], (y - f1)[:, None]).reshape(-1)
            g = bases[k] @ sol
            factors[k] = g / (float(g.abs().max()) or 1.0)
        if abs(rel - new_rel) < 1e-9 * rel or new_rel < 1e-13:
            return f1, f2, new_rel
        rel = new_rel
    return f1, f2, rel


def _one_var(v: Tensor, f: Tensor, name: str, library: Sequence[str] | None, rel: float) -> sympy.Expr | None:
    """A closed form of ``f (N,)`` on ``v (N,)`` up to an additive constant and a scale
    (``f`` comes from a fit of relative error ``rel``: the library fit may miss by as much)."""
    lib = resolve_library(library)
    fit = sparse_fit_1d(v, f, lib, max_terms=2, rtol=max(10 * rel, 1e-6))
    if fit is None:
        return None
    sym = sympy.Symbol(name, real=True)
    expr = fit.to_sympy(sym, lib) - sympy.Float(fit.intercept)
    try:
        return clean_formula(snap_to_data(expr, [name], v[:, None], f - fit.intercept, rel_slack=0.5, abs_slack=max(10 * rel, 1e-6)))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None


def split_candidates(
    x: Tensor, y: Tensor, variables: Sequence[str], *, rtol: float, library: Sequence[str] | None = None,
    deadline: float = math.inf,
) -> Iterator[sympy.Expr]:
    """Formulas of ``y (N,)`` on ``x (N, n)`` (``n >= 3``) for each variable that splits off;
    no variable is tried after ``deadline`` (``time.monotonic()``)."""
    from physkan.symbolic.parse import lambdify_torch

    x, y = x.double(), y.double().reshape(-1)
    n = x.shape[1]
    if n < 3:
        return
    budget = current_budget()
    for i in range(n):
        if budget.check() or time.monotonic() > deadline:
            return
        f1, f2, rel = split_fit(x, y, i)
        if rel > max(SPLIT_GATE, 10 * rtol):
            continue
        spread = lambda f: float(f.std()) / (float(f.abs().mean()) or 1.0)  # noqa: E731
        k = float((f1 @ f2) / (f2 @ f2)) if float(f2 @ f2) > 0 else 0.0
        rest = [j for j in range(n) if j != i]
        names = [variables[j] for j in rest]
        tiny = max(1e-4, 10 * rel)  # the ALS fit is only this accurate
        if spread(f2) < tiny:  # additive: y = f1(x_i) + K·P
            part = _one_var(x[:, i], f1, variables[i], library, rel)
            mode = "add"
        elif float((f1 - k * f2).pow(2).mean().sqrt()) <= tiny * (float(f1.abs().mean()) or 1.0):
            part = _one_var(x[:, i], f2, variables[i], library, rel)  # y = f2(x_i)·(c + P)
            mode = "mul"
        else:
            continue
        if part is None:
            continue
        vals = lambdify_torch(part, [variables[i]])(x[:, i : i + 1]).reshape(-1) * torch.ones_like(y)
        if not bool(torch.isfinite(vals).all()) or (mode == "mul" and bool((vals == 0).any())):
            continue
        r = y - vals if mode == "add" else y / vals
        inner = product_formula(x[:, rest], r, names, library, exact_rel=rtol, offset=True)
        if inner is not None:
            yield part + inner if mode == "add" else part * inner
