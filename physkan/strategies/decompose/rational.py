"""Network-free rational laws: ``t = P(x)/Q(x)`` with small polynomials ``P``, ``Q``.

Many physics laws (and their squares or inverses) are ratios of low-degree polynomials in
the raw variables: ``(u + v)/(1 + u·v/c²)``, ``(1 + n·α/(1 - n·α/3))``, ``x1·y1 + x2·y2``,
``(x2 - x1)² + (y2 - y1)²``, ``(c² - v²)/(c²·m²)``. Multiplying out, ``t·Q(x) - P(x) = 0``
is *linear* in the coefficients of ``P`` and ``Q``, so the law is the null vector of the
matrix ``[Φ(x), -t·Φ(x)]`` (``Φ``: monomials of total degree ``<= d``), found by one SVD per
degree ``d`` (lowest first, so that ``P`` and ``Q`` share no factor). Monomials are then
removed one at a time (smallest first; rows reweighted by ``1/|Q|`` so that the fit
is a least-squares fit of ``t``) while the fit stays within tolerance, so noise does
not leave spurious terms, and the constants are snapped on the data.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import sympy
import torch
from torch import Tensor

from physkan.budget import current_budget
from physkan.symbolic.simplify import clean_formula, snap_to_data

__all__ = ["MAX_COLUMNS", "MAX_FLOATS", "monomial_exponents", "rational_fit"]

#: At most this many unknowns (coefficients of ``P`` and ``Q`` together) per SVD.
MAX_COLUMNS = 180
#: At most this many monomials in ``P`` and ``Q`` together (a Pade approximant of a
#: non-rational law fits smooth data closely too, but with many terms).
MAX_TERMS = 12
#: On exact data (``rtol`` at most :data:`EXACT_RTOL`) a law may keep at most this many
#: constants that do not snap (a Pade approximant of ``1/(exp(a) - 1)`` keeps a dozen).
MAX_FLOATS = 2
EXACT_RTOL = 1e-8
#: Reweighted refits of the null vector (they turn the algebraic fit into a least-squares fit of t).
SK_ITERATIONS = 3


def monomial_exponents(n: int, degree: int) -> list[tuple[int, ...]]:
    """Exponent tuples ``(e_1..e_n)`` of all monomials of total degree ``<= degree``
    (lowest degree first)."""
    out = [e for total in range(degree + 1) for e in itertools.product(range(total + 1), repeat=n) if sum(e) == total]
    return out


def _null_vector(a: Tensor) -> Tensor:
    """Unit right singular vector of ``a (N, k)`` with the smallest singular value, in the
    units of ``a``'s columns (the columns are normalised for the SVD)."""
    norms = a.norm(dim=0).clamp_min(1e-300)
    v = torch.linalg.svd(a / norms, full_matrices=False).Vh[-1]
    return v / norms


def _predict(phi: Tensor, t: Tensor, coef: Tensor, mask: Tensor) -> Tensor:
    m = phi.shape[1]
    c = coef * mask
    return (phi @ c[:m]) / (phi @ c[m:])


def _rel(pred: Tensor, t: Tensor) -> float:
    err = float((pred - t).pow(2).mean().sqrt()) / (float(t.std()) or 1.0)
    return err if math.isfinite(err) else math.inf


def _solve(phi: Tensor, t: Tensor, mask: Tensor) -> tuple[Tensor, float]:
    """Null vector on the kept columns ``mask (2m,)`` and its relative error on ``t``."""
    a = torch.cat([phi, -t[:, None] * phi], 1)
    keep = torch.nonzero(mask).reshape(-1)
    coef = torch.zeros(a.shape[1], dtype=a.dtype)
    if len(keep) < 2:
        return coef, math.inf
    coef[keep] = _null_vector(a[:, keep])
    err = _rel(_predict(phi, t, coef, mask), t)
    for _ in range(SK_ITERATIONS):  # Sanathanan-Koerner: rows weighted by 1/|Q| -> least squares in t
        q = (phi @ coef[phi.shape[1]:]).abs()
        if not bool((q > 0).all()):
            break
        trial = torch.zeros_like(coef)
        trial[keep] = _null_vector(a[:, keep] / q[:, None])
        trial_err = _rel(_predict(phi, t, trial, mask), t)
        if not trial_err < err:
            break
        coef, err = trial, trial_err
    return coef, err


def _sparsify(phi: Tensor, t: Tensor, coef: Tensor, rtol: float) -> tuple[Tensor, Tensor]:
    """Drop monomials (smallest contribution first) while the relative error stays ``<= rtol``."""
    mask = (coef != 0).to(phi.dtype)
    m = phi.shape[1]
    expired = current_budget().expired
    contrib = coef.abs() * torch.cat([phi, phi * t[:, None]], 1).pow(2).mean(0).sqrt()
    tiny = contrib <= 1e-9 * float(contrib.max())
    trial = mask.clone()
    trial[tiny] = 0
    got, err = _solve(phi, t, trial)
    if err <= rtol:
        mask, coef = trial, got
    for k in sorted(range(2 * m), key=lambda j: float(contrib[j])):
        if mask[k] == 0:
            continue
        trial = mask.clone()
        trial[k] = 0
        if float(trial[m:].sum()) == 0 or float(trial[:m].sum()) == 0:
            continue
        got, err = _solve(phi, t, trial)
        if err <= rtol:
            mask, coef = trial, got
        if expired():
            break
    return coef * mask, mask


def _to_sympy(coef: Tensor, exps: list[tuple[int, ...]], scale: Tensor, symbols: Sequence[sympy.Symbol]) -> sympy.Expr:
    """``P/Q`` in the raw variables, normalised so that ``Q``'s largest coefficient is 1."""
    m = len(exps)
    raw = coef.clone()
    for j, e in enumerate(exps):
        div = float(torch.prod(scale ** torch.tensor(e, dtype=scale.dtype)))
        raw[j] /= div
        raw[m + j] /= div
    big = raw[m:][int(raw[m:].abs().argmax())]
    raw = raw / big

    def poly(c: Tensor) -> sympy.Expr:
        terms = [sympy.Float(float(ci)) * sympy.Mul(*(s**k for s, k in zip(symbols, e)))
                 for ci, e in zip(c.tolist(), exps) if ci != 0.0]  # fmt: skip
        return sympy.Add(*terms)

    return poly(raw[:m]) / poly(raw[m:])


def rational_fit(
    x: Tensor, t: Tensor, variables: Sequence[str], *, rtol: float = 1e-7, min_degree: int = 1, max_degree: int = 6,
    max_columns: int = MAX_COLUMNS, max_terms: int = MAX_TERMS,
) -> sympy.Expr | None:
    """The simplest ``P/Q`` (polynomials of total degree ``min_degree..max_degree``) fitting ``t (N,)``
    on ``x (N, n)`` to relative RMSE ``rtol``, constants snapped; ``None`` when none does.

    Degrees are tried lowest first; a degree whose ``2·#monomials`` exceeds ``max_columns``
    (or a quarter of the samples) ends the search; a fit that keeps more than ``max_terms``
    monomials after sparsification is rejected, and so is, on exact data (``rtol <=``
    :data:`EXACT_RTOL`), one that keeps more than :data:`MAX_FLOATS` unsnapped constants.
    """
    x, t = x.double(), t.double().reshape(-1)
    n = x.shape[1]
    if not bool(torch.isfinite(t).all()) or float(t.std()) <= 1e-12 * (float(t.abs().mean()) or 1.0):
        return None
    scale = x.abs().amax(0).clamp_min(1e-300)
    z = x / scale
    symbols = [sympy.Symbol(v, real=True) for v in variables]
    for degree in range(min_degree, max_degree + 1):
        exps = monomial_exponents(n, degree)
        if 2 * len(exps) > min(max_columns, len(t) // 4):
            break
        expo = torch.tensor(exps, dtype=z.dtype)  # (m, n)
        phi = torch.prod(z[:, None, :] ** expo[None], dim=2)  # (N, m)
        coef, err = _solve(phi, t, torch.ones(2 * len(exps), dtype=z.dtype))
        if err > rtol:
            continue
        coef, _ = _sparsify(phi, t, coef, rtol)
        if int((coef != 0).sum()) > max_terms:  # a dense fit is an approximant, not a law
            continue
        expr = _to_sympy(coef, exps, scale, symbols)
        try:
            expr = clean_formula(snap_to_data(expr, variables, x, t, rel_slack=0.5, abs_slack=rtol))
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            continue
        if rtol <= EXACT_RTOL and len(expr.atoms(sympy.Float)) > MAX_FLOATS:  # an approximant, not a law
            continue
        return expr
    return None
