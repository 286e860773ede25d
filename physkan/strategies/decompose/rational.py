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

On noisy data (``sigma``: the noise std of each sample of ``t``) the rows are weighted by
``1/sigma``, the fits are refined by weighted Levenberg-Marquardt (the algebraic fit is
biased by the noise in ``t·Q`` and an over-full fit grows spurious poles), monomials are
dropped by an information criterion (``N·chi² + log(N)·#terms``) and a law is accepted when
its weighted residuals are as small as the noise allows (:func:`chi_gate`), not by a
threshold meant for exact data.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence

import sympy
import torch
from torch import Tensor

from physkan.budget import current_budget
from physkan.symbolic.simplify import clean_formula, snap_to_data

__all__ = ["MAX_COLUMNS", "MAX_FLOATS", "chi_gate", "monomial_exponents", "rational_fit"]

_log = logging.getLogger(__name__)

#: At most this many unknowns (coefficients of ``P`` and ``Q`` together) per SVD.
MAX_COLUMNS = 180
#: At most this many monomials in ``P`` and ``Q`` together (a Pade approximant of a
#: non-rational law fits smooth data closely too, but with many terms).
MAX_TERMS = 12
#: On exact data (``rtol`` at most :data:`EXACT_RTOL`) a law may keep at most this many
#: constants that do not snap (a Pade approximant of ``1/(exp(a) - 1)`` keeps a dozen).
MAX_FLOATS = 2
EXACT_RTOL = 1e-8
#: The same on noisy data (a constant fitted to noisy samples may miss its snap), and the
#: most monomials a noisy law may keep (an approximant fits within the noise with more).
NOISY_MAX_FLOATS = 3
NOISY_MAX_TERMS = 8
#: Reweighted refits of the null vector (they turn the algebraic fit into a least-squares fit of t).
SK_ITERATIONS = 3
#: The same on noisy data (the algebraic fit is biased by the noise in ``t·Q``).
NOISY_SK_ITERATIONS = 4
#: Levenberg-Marquardt steps of a weighted refit on noisy data.
GN_ITERATIONS = 8
#: On noisy data the full fit of a degree may be this far off (``chi`` after refinement: a
#: spurious pole that the elimination removes) before the degree is skipped, and it has at
#: most this many unknowns.
NOISY_FULL_GATE = 100.0
NOISY_MAX_COLUMNS = 120
#: The elimination goes on best first (each drop tried) from at most this many terms.
NOISY_BEST_FIRST = 40
#: Samples on which the monomials of a noisy law are chosen (the law is refitted on all);
#: a law of at most ``NOISY_ALL_ROWS`` unknowns not found so is sought on all samples too.
NOISY_ROWS = 300
NOISY_ALL_ROWS = 40
#: On noisy data (row weights ``1/sigma`` given) a law is accepted when the mean square of
#: its weighted residuals (``chi²``, ``1 ± sqrt(2/N)`` for the true law) is at most
#: ``1 + CHI_SIGMAS·sqrt(2/N)`` (:func:`chi_gate`): a Pade approximant of a non-rational law
#: fits within a few times the noise, but not within the noise.
CHI_SIGMAS = 4.0


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


def _rel(pred: Tensor, t: Tensor, w: Tensor | None = None) -> float:
    """Relative RMSE (to ``std(t)``) of ``pred``, or with row weights ``w = 1/sigma (N,)``
    the RMS of the weighted residuals (``chi``: about 1 for the true law on noisy data)."""
    if w is None:
        err = float((pred - t).pow(2).mean().sqrt()) / (float(t.std()) or 1.0)
    else:
        err = float(((pred - t) * w).pow(2).mean().sqrt())
    return err if math.isfinite(err) else math.inf


def _solve(phi: Tensor, t: Tensor, mask: Tensor, w: Tensor | None = None) -> tuple[Tensor, float]:
    """Null vector on the kept columns ``mask (2m,)`` and its error on ``t`` (:func:`_rel`;
    rows weighted by ``w (N,)`` when given)."""
    a = torch.cat([phi, -t[:, None] * phi], 1)
    rows = None if w is None else w / float(w.mean())
    keep = torch.nonzero(mask).reshape(-1)
    coef = torch.zeros(a.shape[1], dtype=a.dtype)
    if len(keep) < 2:
        return coef, math.inf
    coef[keep] = _null_vector(a[:, keep] if w is None else a[:, keep] * rows[:, None])
    err = _rel(_predict(phi, t, coef, mask), t, w)
    for _ in range(SK_ITERATIONS if w is None else NOISY_SK_ITERATIONS):
        # Sanathanan-Koerner: rows weighted by 1/|Q| -> (weighted) least squares in t
        q = (phi @ coef[phi.shape[1]:]).abs()
        if not bool((q > 0).all()):
            break
        trial = torch.zeros_like(coef)
        trial[keep] = _null_vector(a[:, keep] / q[:, None] if w is None else a[:, keep] * (rows / q)[:, None])
        trial_err = _rel(_predict(phi, t, trial, mask), t, w)
        if not trial_err < err:
            break
        coef, err = trial, trial_err
    return coef, err


def _gauss_newton(phi: Tensor, t: Tensor, coef: Tensor, mask: Tensor, w: Tensor) -> tuple[Tensor, float]:
    """Levenberg-Marquardt refinement of ``P/Q`` on the kept columns: minimises the weighted
    residuals ``(P/Q - t)·w`` (the least-squares fit the noisy data call for)."""
    m = phi.shape[1]
    keep = torch.nonzero(mask).reshape(-1)
    coef = coef * mask
    err = _rel(_predict(phi, t, coef, mask), t, w)
    lam = 1e-3
    for _ in range(GN_ITERATIONS):
        q = phi @ coef[m:]
        pred = (phi @ coef[:m]) / q
        jac = torch.cat([phi / q[:, None], -pred[:, None] * phi / q[:, None]], 1)[:, keep] * w[:, None]
        r = (t - pred) * w
        if not (bool(torch.isfinite(jac).all()) and bool(torch.isfinite(r).all())):
            break
        jtj, jtr = jac.T @ jac, jac.T @ r
        while lam < 1e8:
            damp = jtj + lam * torch.diag(jtj.diagonal().clamp_min(1e-300))
            trial = coef.clone()
            # the damped system is full rank: LAPACK's default gelsy, not physkan.linalg.lstsq
            # (whose SVD truncation changed the steps and cost noisy Feynman rows their budget)
            trial[keep] += torch.linalg.lstsq(damp, jtr[:, None]).solution[:, 0]
            trial_err = _rel(_predict(phi, t, trial, mask), t, w)
            if trial_err < err:
                lam = max(lam / 10, 1e-9)
                break
            lam *= 10
        else:
            break
        done = err - trial_err < 1e-4 * err
        coef, err = trial, trial_err
        if done:
            break
    return coef, err


def _has_pole(phi: Tensor, coef: Tensor) -> bool:
    """Whether ``Q`` changes sign on the samples (a spurious pole of an over-full fit)."""
    q = phi @ coef[phi.shape[1]:]
    return not (bool((q > 0).all()) or bool((q < 0).all()))


def _sparsify(phi: Tensor, t: Tensor, coef: Tensor, rtol: float, w: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Drop monomials (smallest contribution first) while the relative error stays ``<= rtol``;
    with weights ``w`` (noisy data) see :func:`_sparsify_noisy`."""
    if w is not None:
        return _sparsify_noisy(phi, t, coef, w)
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


def _without(phi: Tensor, t: Tensor, coef: Tensor, mask: Tensor, k: int, w: Tensor,
             fresh_above: float = math.inf) -> tuple[Tensor, Tensor, float]:  # fmt: skip
    """Mask, coefficients and ``chi`` of the law refitted without monomial ``k``: from the
    current coefficients and, when that leaves ``chi`` above ``fresh_above``, from a new null
    vector, the better of the two (a warm start may sit next to a spurious pole)."""
    m = phi.shape[1]
    trial = mask.clone()
    trial[k] = 0
    if float(trial[m:].sum()) == 0 or float(trial[:m].sum()) == 0:
        return trial, coef, math.inf
    got, err = _gauss_newton(phi, t, coef, trial, w)
    if err > fresh_above:
        other, other_err = _gauss_newton(phi, t, _solve(phi, t, trial, w)[0], trial, w)
        if other_err < err:
            got, err = other, other_err
    return trial, got, err


def _sparsify_noisy(phi: Tensor, t: Tensor, coef: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """Backward elimination on noisy data: a monomial is dropped when the information criterion
    ``N·chi² + log(N)·#terms`` does not grow; every trial is refitted by weighted least squares
    (:func:`_gauss_newton`). First in passes, smallest contribution first (the bulk of a full
    fit goes fast), then best first (the drop that raises ``chi`` least) until none goes."""
    mask = (coef != 0).to(phi.dtype)
    expired = current_budget().expired
    coef, cur = _gauss_newton(phi, t, coef, mask, w)
    penalty = math.log(len(t)) / len(t)  # BIC per term, in units of chi²
    changed = True
    while changed and not expired():
        _log.debug("noisy elimination: %d terms, chi %.3g", int(mask.sum()), cur)
        changed = False
        contrib = coef.abs() * torch.cat([phi, phi * t[:, None]], 1).pow(2).mean(0).sqrt()
        for k in sorted(torch.nonzero(mask).reshape(-1).tolist(), key=lambda j: float(contrib[j])):
            trial, got, err = _without(phi, t, coef, mask, k, w, math.sqrt(cur**2 + penalty))
            if err**2 <= cur**2 + penalty:
                mask, coef, cur, changed = trial, got, err, True
            if expired():
                break
    while int(mask.sum()) <= NOISY_BEST_FIRST and not expired():
        trials = [_without(phi, t, coef, mask, k, w) for k in torch.nonzero(mask).reshape(-1).tolist()]
        if not trials:
            break
        trial, got, err = min(trials, key=lambda r: r[2])
        if not err**2 <= cur**2 + penalty:
            break
        mask, coef, cur = trial, got, err
        _log.debug("noisy elimination, best first: %d terms, chi %.3g", int(mask.sum()), cur)
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


def chi_gate(n: int) -> float:
    """Largest RMS of weighted residuals (``chi``) a law fitted to ``n`` noisy samples may show."""
    return math.sqrt(1.0 + CHI_SIGMAS * math.sqrt(2.0 / max(n, 1)))


def _noisy_structure(phi: Tensor, t: Tensor, w: Tensor, gate: float) -> Tensor | None:
    """Coefficients ``(2m,)`` of the sparse law of one degree on noisy data, ``None`` when none
    fits to ``gate``. The monomials are chosen on about :data:`NOISY_ROWS` samples (at least
    ``5·m``) and refitted on all; a law of at most :data:`NOISY_ALL_ROWS` unknowns that is not
    found so is chosen on all samples again (the greedy elimination may stick with spurious
    terms on one set of rows and not on another)."""
    step = max(1, len(t) // max(NOISY_ROWS, 5 * phi.shape[1]))
    tries = [step] + ([1] if step > 1 and 2 * phi.shape[1] <= NOISY_ALL_ROWS else [])
    for k in tries:
        ps, ts, ws = phi[::k], t[::k], w[::k]
        coef, _ = _solve(ps, ts, torch.ones(phi.shape[1] * 2, dtype=phi.dtype), ws)
        mask = torch.ones_like(coef)
        full = _gauss_newton(ps, ts, coef, mask, ws)[1]
        if full > NOISY_FULL_GATE or (not _has_pole(ps, coef) and full > chi_gate(len(ts))):
            return None  # too far off, or no spurious pole to remove: a sparser law cannot fit better
        coef, mask = _sparsify(ps, ts, coef, chi_gate(len(ts)), ws)
        coef, err = _gauss_newton(phi, t, coef, mask, w)
        if err <= gate and int(mask.sum()) <= NOISY_MAX_TERMS:
            return coef * mask
    return None


def _weighted_chi(expr: sympy.Expr, variables: Sequence[str], x: Tensor, t: Tensor, w: Tensor) -> float:
    """RMS of the weighted residuals ``(expr(x) - t)·w`` (``inf`` if ``expr`` fails)."""
    from physkan.symbolic.parse import lambdify_torch

    try:
        pred = lambdify_torch(expr, list(variables))(x).reshape(-1) * torch.ones_like(t)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, KeyError):
        return math.inf
    return _rel(pred, t, w)


def rational_fit(
    x: Tensor, t: Tensor, variables: Sequence[str], *, rtol: float = 1e-7, min_degree: int = 1, max_degree: int = 6,
    max_columns: int = MAX_COLUMNS, max_terms: int = MAX_TERMS, sigma: Tensor | None = None,
) -> sympy.Expr | None:
    """The simplest ``P/Q`` (polynomials of total degree ``min_degree..max_degree``) fitting ``t (N,)``
    on ``x (N, n)`` to relative RMSE ``rtol``, constants snapped; ``None`` when none does.

    Degrees are tried lowest first; a degree whose ``2·#monomials`` exceeds ``max_columns``
    (or a quarter of the samples) ends the search; a fit that keeps more than ``max_terms``
    monomials after sparsification is rejected, and so is, on exact data (``rtol <=``
    :data:`EXACT_RTOL`), one that keeps more than :data:`MAX_FLOATS` unsnapped constants.

    ``sigma (N,)``: the per-sample noise std of ``t`` (noisy data, in ``t``'s units). The fit is
    then a weighted least-squares fit (rows weighted by ``1/sigma``), terms are dropped by an
    information criterion, and a law is accepted when its weighted residuals' RMS is at most
    :func:`chi_gate` (``rtol`` is not used).
    """
    x, t = x.double(), t.double().reshape(-1)
    n = x.shape[1]
    if not bool(torch.isfinite(t).all()) or float(t.std()) <= 1e-12 * (float(t.abs().mean()) or 1.0):
        return None
    w = None
    if sigma is not None:
        sigma = sigma.double().reshape(-1) * torch.ones_like(t)
        if not bool(torch.isfinite(sigma).all()) or not bool((sigma > 0).all()):
            return None
        w, rtol = 1.0 / sigma, chi_gate(len(t))
        max_columns = min(max_columns, NOISY_MAX_COLUMNS)
    scale = x.abs().amax(0).clamp_min(1e-300)
    z = x / scale
    symbols = [sympy.Symbol(v, real=True) for v in variables]
    for degree in range(min_degree, max_degree + 1):
        exps = monomial_exponents(n, degree)
        if 2 * len(exps) > min(max_columns, len(t) // 4):
            break
        expo = torch.tensor(exps, dtype=z.dtype)  # (m, n)
        phi = torch.prod(z[:, None, :] ** expo[None], dim=2)  # (N, m)
        if w is None:
            coef, err = _solve(phi, t, torch.ones(2 * len(exps), dtype=z.dtype))
            if err > rtol:
                continue
            coef, _ = _sparsify(phi, t, coef, rtol)
        else:
            coef = _noisy_structure(phi, t, w, rtol)
            if coef is None:
                continue
        if int((coef != 0).sum()) > (max_terms if w is None else min(max_terms, NOISY_MAX_TERMS)):
            # a dense fit is an approximant, not a law
            continue
        raw = _to_sympy(coef, exps, scale, symbols)
        try:
            expr = clean_formula(snap_to_data(raw, variables, x, t, rel_slack=0.5, abs_slack=rtol if w is None else 0.0))
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            continue
        if w is not None and _weighted_chi(expr, variables, x, t, w) > rtol:
            expr = clean_formula(raw)  # a snap that fits the amplified-noise samples, not the law
            if _weighted_chi(expr, variables, x, t, w) > rtol:
                continue
        floats = len(expr.atoms(sympy.Float))
        if (rtol <= EXACT_RTOL and floats > MAX_FLOATS) or (w is not None and floats > NOISY_MAX_FLOATS):
            # an approximant, not a law
            continue
        return expr
    return None
