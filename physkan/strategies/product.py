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

from physkan.budget import current_budget
from physkan.linalg import lstsq
from physkan.strategies.logsep import SCALE_FREE, SNAP_CONSTANTS
from physkan.symbolic.fit import suggest_symbolic
from physkan.symbolic.library import get_symbolic
from physkan.symbolic.simplify import DEFAULT_CONSTANTS, clean_formula, snap_value

__all__ = ["ProductFit", "block_product_formula", "chebyshev_basis", "product_formula", "rank1_fit"]


@dataclass
class ProductFit:
    """A rank-one fit: factor values on the samples, the relative training error and the
    number of ALS sweeps it took."""

    factors: list[Tensor]  # (N,) per input
    rel_error: float
    sweeps: int = 0


#: ``rank1_fit(give_up=...)``: the rate of progress is measured over this many sweeps, ...
GIVE_UP_WINDOW = 5
#: ... from this sweep on, and a fit stops when, extrapolated at that rate to its last sweep,
#: its relative error would still be this many times ``give_up``. Replayed on the 633 rank-one
#: fits of a clean Feynman dev-set run, this stops none of the 32 that reach their threshold
#: and cuts the time of the others by 57 %.
GIVE_UP_FROM_SWEEP = 10
GIVE_UP_MARGIN = 10.0


def _hopeless(history: list[float], sweeps: int, give_up: float) -> bool:
    """Whether a fit whose relative errors so far are ``history`` (one per sweep) cannot get
    below ``give_up`` within ``sweeps`` sweeps at its present (geometric) rate of progress,
    by a margin of :data:`GIVE_UP_MARGIN`."""
    done = len(history)
    if done <= GIVE_UP_FROM_SWEEP or history[-1] <= give_up:
        return False
    earlier = history[-1 - GIVE_UP_WINDOW]
    rate = min(1.0, history[-1] / earlier) if earlier > 0 else 1.0
    return history[-1] * rate ** ((sweeps - done) / GIVE_UP_WINDOW) > GIVE_UP_MARGIN * give_up


def chebyshev_basis(x: Tensor, lo: float, hi: float, degree: int) -> Tensor:
    """Chebyshev polynomials ``T_0..T_degree`` of ``x (N,)`` mapped from ``[lo, hi]`` to
    ``[-1, 1]``: ``(N, degree + 1)``."""
    t = (2 * x - lo - hi) / ((hi - lo) or 1.0)
    cols = [torch.ones_like(t), t]
    for _ in range(degree - 1):
        cols.append(2 * t * cols[-1] - cols[-2])
    return torch.stack(cols[: degree + 1], 1)


def rank1_fit(x: Tensor, y: Tensor, *, degree: int = 16, sweeps: int = 40, tol: float = 1e-12,
              offset: bool = False, init: list[Tensor] | None = None,
              give_up: float | None = None) -> ProductFit:  # fmt: skip
    """Alternating least squares for ``y ≈ prod_i g_i(x_i)`` (``+ c`` with ``offset``) with
    polynomial ``g_i``.

    ``give_up``: the relative error the caller accepts; the sweeps stop early once the fit
    cannot reach it at its present rate of progress (see :func:`_hopeless`: data that are
    not a product leave a slowly falling error far above it)."""
    x, y = x.double(), y.double().reshape(-1)
    n = x.shape[1]
    bases = [chebyshev_basis(x[:, i], float(x[:, i].min()), float(x[:, i].max()), degree) for i in range(n)]
    factors = list(init) if init is not None else [torch.ones_like(y) for _ in range(n)]
    scale = float(y.std()) or 1.0
    rel = float("inf")
    history: list[float] = []
    for _ in range(sweeps):
        for k in range(n):
            w = torch.ones_like(y)
            for i in range(n):
                if i != k:
                    w = w * factors[i]
            A = bases[k] * w[:, None]
            if offset:
                A = torch.cat([A, torch.ones_like(y)[:, None]], 1)
            coef = lstsq(A, y[:, None]).reshape(-1)
            g = bases[k] @ coef[: bases[k].shape[1]]
            norm = float(g.abs().max()) or 1.0
            factors[k] = g / norm
        pred = torch.ones_like(y)
        for g in factors:
            pred = pred * g
        new_rel = _affine_rel(pred, y, offset) / scale
        history.append(new_rel)
        if abs(rel - new_rel) < tol * max(rel, 1e-300) or new_rel < 1e-13:
            rel = new_rel
            break
        rel = new_rel
        if give_up is not None and _hopeless(history, sweeps, give_up):
            break
    return ProductFit(factors, rel, len(history))


def _affine_rel(pred: Tensor, y: Tensor, offset: bool) -> float:
    """RMSE of the best ``k·pred (+ c)`` against ``y``."""
    a = torch.stack([pred, torch.ones_like(pred)], 1) if offset else pred[:, None]
    sol = lstsq(a, y[:, None])
    return float((a @ sol - y[:, None]).pow(2).mean().sqrt())


def _snap(value: float, tolerance: float, constants: Sequence[sympy.Expr] = ()) -> sympy.Expr:
    """The simplest number near ``value``, trying tight tolerances first (pi/2 before 11/7)."""
    for tol in (1e-9, 1e-7, 1e-5, 1e-4, 1e-3):
        if tol > tolerance:
            break
        s = snap_value(value, tolerance=tol, constants=constants)
        if s is not None:
            return s
    return sympy.Float(value)


def _factor_expr(xi: Tensor, gi: Tensor, symbol: sympy.Symbol, library,
                 tiny: float = 1e-6) -> tuple[sympy.Expr, Tensor] | None:  # fmt: skip
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
        sol = lstsq(A, gi[:, None]).reshape(-1)
        resid = float((A @ sol - gi).pow(2).mean().sqrt())
        if best is None or resid < best[0] * 0.5:
            best = (resid, a, b, f_vals, sol.tolist())
    assert best is not None
    _, a, b, f_vals, (alpha, beta) = best
    if alpha == 0.0:
        return None
    e_raw = beta / alpha
    e = sympy.Integer(0) if abs(e_raw) < tiny * (float(f_vals.abs().mean()) or 1.0) else _snap(e_raw, 1e-4)
    expr = fn.sympy_fn(a * symbol + b) + e
    return expr, f_vals + float(e)


def product_formula(
    x: Tensor,
    y: Tensor,
    variables: Sequence[str],
    library=None,
    *,
    exact_rel: float = 1e-7,
    offset: bool = False,
) -> sympy.Expr | None:
    """The product law ``K·prod_i f_i(x_i)`` (``+ c`` with ``offset``) when the data are
    exactly one, else ``None``.

    ``exact_rel``: relative RMSE (to ``std(y)``) of an exact fit; on noisy data pass the noise
    level (the prefactor ``K`` is then snapped to a simple number only if that keeps the fit
    within it)."""
    x, y = x.double(), y.double().reshape(-1)
    accept = max(1e-4, 10 * exact_rel)
    fit = _offset_fit(x, y, give_up=accept) if offset else rank1_fit(x, y, give_up=accept)
    if fit.rel_error > accept:  # not a product (exact check after the symbolic step)
        return None
    symbols = [sympy.Symbol(v, real=True) for v in variables]
    expr: sympy.Expr = sympy.Integer(1)
    pred = torch.ones_like(y)
    for i, g in enumerate(fit.factors):
        got = _factor_expr(x[:, i], g, symbols[i], library, tiny=max(1e-6, exact_rel))
        if got is None:
            return None
        expr, pred = expr * got[0], pred * got[1]
    if not bool(torch.isfinite(pred).all()) or float(pred @ pred) == 0.0:
        return None
    if offset:
        return _with_offset(expr, pred, y, exact_rel)
    k = float((pred @ y) / (pred @ pred))
    rel = float((k * pred - y).pow(2).mean().sqrt()) / (float(y.std()) or 1.0)
    if rel > exact_rel:
        return None
    snapped = _snap(k, max(1e-7, exact_rel), SNAP_CONSTANTS)
    if not isinstance(snapped, sympy.Float):  # a simple number: keep it if the fit stays exact
        rel_snapped = float((float(snapped) * pred - y).pow(2).mean().sqrt()) / (float(y.std()) or 1.0)
        snapped = snapped if rel_snapped <= max(exact_rel, 1e-7) else _snap(k, 1e-7, SNAP_CONSTANTS)
    return clean_formula(snapped * expr)


def _offset_fit(x: Tensor, y: Tensor, give_up: float | None = None) -> ProductFit:
    """Rank-one fit of ``y ≈ c + prod_i g_i(x_i)``: ALS started from the plain rank-one fit of
    ``y - min(y)`` and of ``y - max(y)`` (the offset of a one-signed product lies beyond one
    end of the data; a start at ``g_i = 1`` stalls on the offset's degeneracy); the better one.
    ``give_up``: as for :func:`rank1_fit`, for the offset fits."""
    fits = [rank1_fit(x, y, offset=True, sweeps=80, init=rank1_fit(x, y - c0, sweeps=10).factors,
                      give_up=give_up) for c0 in (y.min(), y.max())]  # fmt: skip
    return min(fits, key=lambda f: f.rel_error)


def _with_offset(expr: sympy.Expr, pred: Tensor, y: Tensor, exact_rel: float) -> sympy.Expr | None:
    """``c + K·expr`` (``pred``: ``expr`` on the samples) by least squares, both snapped when
    the fit stays within ``exact_rel``; ``None`` when it is not exact."""
    a = torch.stack([pred, torch.ones_like(pred)], 1)
    k, c = lstsq(a, y[:, None]).reshape(-1).tolist()
    scale = float(y.std()) or 1.0
    tol = max(exact_rel, 1e-7)

    def rel(kk: float, cc: float) -> float:
        return float((kk * pred + cc - y).pow(2).mean().sqrt()) / scale

    if rel(k, c) > exact_rel:
        return None
    ks, cs = _snap(k, tol, SNAP_CONSTANTS), _snap(c, tol, SNAP_CONSTANTS)
    ks = ks if rel(float(ks), c) <= tol else sympy.Float(k)
    cs = cs if rel(float(ks), float(cs)) <= tol else sympy.Float(c)
    return clean_formula(cs + ks * expr)


# --------------------------------------------------------------------------- one additive block


def _block_als(x: Tensor, y: Tensor, block: Sequence[int], degree: int = 10, sweeps: int = 30) -> tuple[list[Tensor], Tensor, float]:
    """ALS for ``y ≈ prod_{i not in block} g_i(x_i) · (c + sum_{j in block} h_j(x_j))``.

    Returns the singleton factors (by input; ones for block inputs), the block's component
    values ``(N, |block|)`` (without the constant) and the relative training error.
    """
    n = x.shape[1]
    bases = [chebyshev_basis(x[:, i], float(x[:, i].min()), float(x[:, i].max()), degree) for i in range(n)]
    singles = [i for i in range(n) if i not in block]
    block_basis = torch.cat([torch.ones_like(y)[:, None], *[bases[j][:, 1:] for j in block]], 1)
    factors = [torch.ones_like(y) for _ in range(n)]
    block_val = torch.ones_like(y)
    block_coef = torch.zeros(block_basis.shape[1], dtype=y.dtype)
    scale = float(y.std()) or 1.0
    rel = float("inf")
    for _ in range(sweeps):
        w = torch.ones_like(y)
        for i in singles:
            w = w * factors[i]
        block_coef = lstsq(block_basis * w[:, None], y[:, None]).reshape(-1)
        block_val = block_basis @ block_coef
        block_val = block_val / (float(block_val.abs().max()) or 1.0)
        for k in singles:
            w = block_val.clone()
            for i in singles:
                if i != k:
                    w = w * factors[i]
            coef = lstsq(bases[k] * w[:, None], y[:, None]).reshape(-1)
            g = bases[k] @ coef
            factors[k] = g / (float(g.abs().max()) or 1.0)
        pred = block_val.clone()
        for i in singles:
            pred = pred * factors[i]
        den = float(pred @ pred)
        new_rel = float(((float(pred @ y) / den if den else 0.0) * pred - y).pow(2).mean().sqrt()) / scale
        if abs(rel - new_rel) < 1e-10 * max(rel, 1e-300) or new_rel < 1e-12:
            rel = new_rel
            break
        rel = new_rel
    comps, start = [], 1
    for j in block:
        width = bases[j].shape[1] - 1
        comps.append(bases[j][:, 1:] @ block_coef[start : start + width])
        start += width
    return factors, torch.stack(comps, 1), rel


def _block_term(xi: Tensor, hi: Tensor, library) -> tuple[str, sympy.Expr, sympy.Expr] | None:
    """The library function of one block component: ``(name, a, b)`` of ``f(a·x + b)``."""
    ranked = suggest_symbolic(xi, hi, library, topk=1)
    if not ranked or ranked[0].fit.r2 < 0.999:
        return None
    fit = ranked[0].fit
    if fit.name in SCALE_FREE:
        b = _snap(fit.b / fit.a, 1e-3) if abs(fit.b / fit.a) > 1e-3 else sympy.Integer(0)
        return fit.name, sympy.Integer(1), b if fit.name != "x" else sympy.Integer(0)
    b = _snap(fit.b, 1e-3, (sympy.pi,)) if abs(fit.b) > 1e-4 else sympy.Integer(0)
    return fit.name, _snap(fit.a, 1e-4, DEFAULT_CONSTANTS), b


def _block_formula(x: Tensor, y: Tensor, variables: Sequence[str], library, block: Sequence[int],
                   exact_rel: float) -> sympy.Expr | None:  # fmt: skip
    factors, comps, rel = _block_als(x, y, block)
    if rel > max(1e-4, 10 * exact_rel):  # the ALS residual is at least the noise
        return None
    symbols = [sympy.Symbol(v, real=True) for v in variables]
    single_expr: sympy.Expr = sympy.Integer(1)
    single_vals = torch.ones_like(y)
    for i in range(x.shape[1]):
        if i in block:
            continue
        got = _factor_expr(x[:, i], factors[i], symbols[i], library)
        if got is None:
            return None
        single_expr, single_vals = single_expr * got[0], single_vals * got[1]
    terms, cols = [], []
    for col, j in enumerate(block):
        got = _block_term(x[:, j], comps[:, col], library)
        if got is None:
            return None
        name, a, b = got
        fn = get_symbolic(name)
        terms.append(fn.sympy_fn(a * symbols[j] + b))
        cols.append(fn.torch_fn(float(a) * x[:, j] + float(b)))
    A = torch.stack([single_vals * c for c in cols] + [single_vals], 1)
    if not bool(torch.isfinite(A).all()):
        return None
    sol = lstsq(A, y[:, None]).reshape(-1)
    if float((A @ sol - y).pow(2).mean().sqrt()) > exact_rel * (float(y.std()) or 1.0):
        return None
    coefs = [_snap(c, 1e-6, SNAP_CONSTANTS) for c in sol.tolist()]
    if abs(float(sol[-1])) < 1e-9 * float(sol[:-1].abs().max()):
        coefs[-1] = sympy.Integer(0)
    block_expr = sum((c * t for c, t in zip(coefs[:-1], terms)), coefs[-1])
    return single_expr * block_expr


def block_product_formula(
    x: Tensor,
    y: Tensor,
    variables: Sequence[str],
    library=None,
    *,
    max_block: int = 3,
    max_inputs: int = 6,
    time_budget: float = 10.0,
    exact_rel: float = 1e-7,
) -> sympy.Expr | None:
    """``prod_i g_i(x_i) · (sum_{j in B} h_j(x_j) + c)`` for one additive block ``B``, on ``y``
    and (when ``y`` keeps one sign) on ``1/y``; the first exact law found, else ``None``.

    Covers ``m·(v^2 + u^2 + w^2)/2`` and, through ``1/y``, ``q·E/(m·(omega_0^2 - omega^2))``.
    Blocks of 2..``max_block`` inputs are tried smallest first, within ``time_budget`` seconds
    (and within :func:`physkan.budget.current_budget`, marked exhausted when it cuts the search).
    """
    import itertools
    import time

    x, y = x.double(), y.double().reshape(-1)
    n = x.shape[1]
    if n < 2 or n > max_inputs:
        return None
    targets: list[tuple[Tensor, bool]] = [(y, False)]
    if float(y.abs().min()) > 1e-6 * float(y.abs().max()):
        targets.append((1.0 / y, True))
    start = time.perf_counter()
    budget = current_budget()
    time_budget = min(time_budget, budget.remaining())
    for size in range(2, min(max_block, n) + 1):
        for block in itertools.combinations(range(n), size):
            for target, inverted in targets:
                if time.perf_counter() - start > time_budget:
                    budget.check()
                    return None
                expr = _block_formula(x, target, variables, library, list(block), exact_rel)
                if expr is not None:
                    expr = 1 / expr if inverted else expr
                    return clean_formula(expr)
    return None
