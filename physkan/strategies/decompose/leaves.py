"""Leaves of the decomposition: laws of one or two variables, found by sparse dictionary
regression on the raw data (or a surrogate's table of a part).

A leaf tries ``T(y) ≈ c + sum_s a_s φ_s(x)`` for target transforms ``T`` (identity, square,
inverse, inverse square, log, square root, sine: the invertible outer functions) and features
``φ_s``: library functions of each variable and, for two variables, their pairwise products
and library functions of their product and ratio
(so ``x0^2 + x1^2``, ``u^2/σ^2 + log σ`` or ``1/m^2 - w^2/m^2`` are two terms). One variable
reuses :func:`physkan.symbolic.sparse.sparse_fit_1d`. The smallest subset that fits to
``rtol`` wins; its constants are snapped on the data (:func:`snap_to_data`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sympy
import torch
from torch import Tensor

from physkan.linalg import lstsq
from physkan.symbolic.library import get_symbolic, resolve_library
from physkan.symbolic.simplify import clean_formula, snap_to_data
from physkan.symbolic.sparse import sparse_fit_1d

__all__ = ["TRANSFORMS", "Transform", "fit_leaf", "transforms_for"]

#: Features of each variable in a two-variable leaf (their products are features too).
PAIR_BASIS: tuple[str, ...] = ("x", "x^2", "1/x", "1/x^2", "sqrt", "log", "exp", "sin", "cos")
#: Features of the product and of the ratio of the two variables (``cos(k·d)``, ``exp(-E/T)``).
COMBINED_BASIS: tuple[str, ...] = ("sqrt", "log", "exp", "sin", "cos")


@dataclass(frozen=True)
class Transform:
    """An invertible outer function: ``forward(y) = T(y)`` and ``y = inverse(T(y))``."""

    name: str
    forward: Callable[[Tensor], Tensor]
    inverse: Callable[[sympy.Expr, int], sympy.Expr]  # (expr of T(y), sign of y) -> expr of y
    needs: str  # "any", "nonzero" (y keeps one sign) or "half-pi" (|y| <= pi/2: y = arcsin(T))


TRANSFORMS: tuple[Transform, ...] = (
    Transform("identity", lambda y: y, lambda e, s: e, "any"),
    Transform("square", lambda y: y**2, lambda e, s: s * sympy.sqrt(e), "nonzero"),
    Transform("inverse", lambda y: 1 / y, lambda e, s: 1 / e, "nonzero"),
    Transform("inverse square", lambda y: 1 / y**2, lambda e, s: s / sympy.sqrt(e), "nonzero"),
    Transform("log", lambda y: torch.log(y.abs()), lambda e, s: s * sympy.exp(e), "nonzero"),
    Transform("sqrt", lambda y: y.abs().sqrt(), lambda e, s: s * e**2, "nonzero"),
    Transform("arcsin", torch.sin, lambda e, s: sympy.asin(e), "half-pi"),
)


def transforms_for(y: Tensor) -> list[tuple[Transform, int]]:
    """The transforms valid on ``y (N,)`` with the sign they need (``0``: none)."""
    lo, hi = float(y.min()), float(y.max())
    sign = 1 if lo > 0 else -1 if hi < 0 else 0
    ok = {"any": True, "nonzero": sign != 0, "half-pi": max(abs(lo), abs(hi)) <= math.pi / 2}
    return [(t, sign) for t in TRANSFORMS if ok[t.needs]]


def _features(x: Tensor, names: Sequence[str], symbols: Sequence[sympy.Symbol]) -> list[tuple[sympy.Expr, Tensor]]:
    """Candidate features ``(expr, values (N,))`` of a two-variable leaf (finite, not constant)."""
    per_var: list[list[tuple[sympy.Expr, Tensor]]] = []
    for i, sym in enumerate(symbols):
        col = []
        for name in names:
            fn = get_symbolic(name)
            v = fn.torch_fn(x[:, i])
            if bool(torch.isfinite(v).all()) and float(v.std()) > 1e-12:
                col.append((fn.sympy_fn(sym), v))
        per_var.append(col)
    feats = [f for col in per_var for f in col]
    if len(per_var) == 2:
        feats += [(ea * eb, va * vb) for (ea, va), (eb, vb) in itertools.product(*per_var)]
        a, b = symbols
        for ex, v in ((a * b, x[:, 0] * x[:, 1]), (a / b, x[:, 0] / x[:, 1])):  # f(a·b), f(a/b): cos(k·d)
            for name in COMBINED_BASIS:
                fn = get_symbolic(name)
                val = fn.torch_fn(v)
                if bool(torch.isfinite(val).all()) and float(val.std()) > 1e-12:
                    feats.append((fn.sympy_fn(ex), val))
    return feats


def _sparse(feats: list[tuple[sympy.Expr, Tensor]], t: Tensor, max_terms: int, rtol: float,
            sub: Tensor, chunk: int = 2048) -> sympy.Expr | None:  # fmt: skip
    """Smallest feature subset (screened on the rows ``sub`` by batched least squares,
    confirmed on all rows) fitting ``t``."""
    scale = float(t.std()) or 1.0
    ones = torch.ones_like(t)
    cols = torch.stack([f[1] for f in feats], 1) if feats else t.new_zeros(len(t), 0)
    for size in range(1, max_terms + 1):
        best: tuple[float, sympy.Expr] | None = None
        subsets = list(itertools.combinations(range(len(feats)), size))
        for start in range(0, len(subsets), chunk):
            idx = torch.tensor(subsets[start : start + chunk], dtype=torch.long)  # (B, size)
            a = torch.cat([ones[sub].expand(len(idx), -1)[..., None], cols[sub][:, idx].permute(1, 0, 2)], 2)
            sol = lstsq(a, t[sub].expand(len(idx), -1)[..., None])
            err = (a @ sol)[..., 0].sub(t[sub]).pow(2).mean(1).sqrt()
            for b in torch.nonzero(err <= rtol * scale).reshape(-1).tolist():
                subset = subsets[start + b]
                full = torch.stack([ones, *(feats[k][1] for k in subset)], 1)
                coef = lstsq(full, t[:, None])[:, 0]
                e = float((full @ coef - t).pow(2).mean().sqrt()) / scale
                if e <= rtol and (best is None or e < best[0]):
                    expr = sympy.Float(float(coef[0])) + sum(
                        (sympy.Float(float(c)) * feats[k][0] for c, k in zip(coef[1:], subset)), sympy.Integer(0))
                    best = (e, expr)
        if best is not None:
            return best[1]
    return None


def fit_leaf(
    x: Tensor, y: Tensor, variables: Sequence[str], *, rtol: float = 1e-7, library: Sequence[str] | None = None,
    max_terms: int = 2,
) -> sympy.Expr | None:
    """A closed form of ``y (N,)`` on ``x (N, k)`` (``k`` = 1 or 2) to relative error ``rtol``
    (after snapping), trying every transform of :data:`TRANSFORMS`; ``None`` when none fits."""
    if x.shape[1] not in (1, 2):
        raise ValueError(f"variables: a leaf has 1 or 2 variables, got {x.shape[1]}")
    x, y = x.double(), y.double().reshape(-1)
    symbols = [sympy.Symbol(v, real=True) for v in variables]
    scale = float(y.std()) or 1.0
    sub = torch.arange(len(y))[:: max(1, len(y) // 200)]
    feats = _features(x, PAIR_BASIS, symbols) if x.shape[1] == 2 else []
    for transform, sign in transforms_for(y):
        t = transform.forward(y)
        if not bool(torch.isfinite(t).all()) or float(t.std()) < 1e-12 * (float(t.abs().mean()) or 1.0):
            continue
        if x.shape[1] == 1:
            lib = resolve_library(library)
            fit = sparse_fit_1d(x[:, 0], t, lib, max_terms=max_terms, rtol=rtol)
            inner = fit.to_sympy(symbols[0], lib) if fit is not None else None
        else:
            inner = _sparse(feats, t, max_terms, rtol, sub)
        if inner is None:
            continue
        expr = transform.inverse(inner, sign or 1)
        try:
            expr = clean_formula(snap_to_data(expr, variables, x, y, rel_slack=0.5, abs_slack=rtol))
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            continue
        err = _rmse(expr, variables, x, y) / scale
        if err <= max(10 * rtol, 1e-9):
            return expr
    return None


def _rmse(expr: sympy.Expr, variables: Sequence[str], x: Tensor, y: Tensor) -> float:
    from physkan.symbolic.simplify import formula_error

    try:
        return formula_error(expr, variables, x, y)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return float("inf")
