"""Affine symbolic fitting of one KAN edge: ``y ≈ c·f(a·x + b) + d``.

``x`` and ``y`` are the samples of one edge's pre- and post-activation (shape ``(N,)``, any
units: ``a`` carries ``1/[x]``, ``c`` and ``d`` carry ``[y]``).

Algorithm of :func:`affine_fit` (all arithmetic in float64):

1. Drop non-finite pairs. Standardise ``z = (x - m)/h`` with ``m`` the mid-range and ``h`` the
   half-range, so the data span ``z ∈ [-1, 1]``. ``a_range``/``b_range`` are searched in these
   standardised coordinates (``a' = a·h``, ``b' = b + a·m``), which makes the search
   independent of the units of ``x``.
2. Coarse grid over ``(a', b')`` on a quantile subsample of at most ``max_points`` points: all
   ``grid_number²`` candidates are evaluated in one batched tensor op; ``c, d`` are solved in
   closed form for every candidate and its r² is computed. Candidates whose argument interval
   ``[min(a'z+b'), max(a'z+b')]`` leaves the function's domain or crosses a pole, or that
   produce non-finite values, are discarded. For even/odd functions only ``a' >= 0`` is
   searched (``f(-u) = ±f(u)`` makes the other half redundant), which also makes the result
   canonical.
3. ``iterations - 1`` zooms: a finer grid (``min(grid_number, 21)`` points a side) on the
   neighbouring cells of the current best.
4. ``refine``: Levenberg–Marquardt on ``(a', b', c, d)`` over all points; a step is only
   accepted if it lowers the squared error and stays in the domain.
5. Periodic functions report ``b`` wrapped into ``[-period/2, period/2)``.

r² is ``1 - SSE/SST`` on all finite points (``1`` when ``y`` is constant).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sympy
import torch
from torch import Tensor

from physkan.budget import current_budget
from physkan.symbolic.library import SymbolicFunction, get_symbolic, resolve_library

__all__ = [
    "AffineFit",
    "Candidate",
    "affine_fit",
    "fit_coefficients_closed_form",
    "score_candidate",
    "suggest_symbolic",
]

_DT = torch.float64
_ZOOM_GRID = 21
_R2_FLOOR = 1e-5  # pykan: log2(1 + 1e-5 - r2)


@dataclass(frozen=True)
class AffineFit:
    """Result of fitting ``y ≈ c·f(a·x + b) + d`` (parameters in the units of the raw ``x``)."""

    a: float
    b: float
    c: float
    d: float
    r2: float
    name: str

    def __call__(self, x: Tensor, fn: SymbolicFunction | None = None) -> Tensor:
        """Evaluate the fitted curve at ``x`` (any shape)."""
        f = fn if fn is not None else get_symbolic(self.name)
        return self.c * f.torch_fn(self.a * x + self.b) + self.d

    def to_sympy(self, arg: sympy.Expr, fn: SymbolicFunction | None = None) -> sympy.Expr:
        """``c·f(a·arg + b) + d`` as a sympy expression (Float coefficients)."""
        f = fn if fn is not None else get_symbolic(self.name)
        if self.c == 0.0:
            return sympy.Float(self.d)
        inner = sympy.Float(self.a) * arg + sympy.Float(self.b)
        return sympy.Float(self.c) * f.sympy_fn(inner) + sympy.Float(self.d)


@dataclass(frozen=True)
class Candidate:
    """One entry of :func:`suggest_symbolic`'s ranking (higher ``score`` is better)."""

    name: str
    fit: AffineFit
    score: float


# --------------------------------------------------------------------------- closed form


def fit_coefficients_closed_form(f_values: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Least-squares ``c, d`` of ``y ≈ c·f + d`` and its r², batched.

    Args:
        f_values: ``(..., N)`` candidate feature values (one row per candidate).
        y: ``(N,)`` targets.

    Returns:
        ``(c, d, r2)`` each of shape ``(...)``. Rows where ``f`` is (numerically) constant or
        not finite get ``c = 0``, ``d = mean(y)`` and r² = 0 (r² = 1 if ``y`` is constant).
    """
    f = f_values.to(_DT)
    yy = y.to(_DT)
    finite = torch.isfinite(f).all(dim=-1)
    f = torch.where(torch.isfinite(f), f, torch.zeros((), dtype=_DT))
    y_mean = yy.mean()
    yc = yy - y_mean
    vy = (yc * yc).mean()
    fm = f.mean(dim=-1)
    fc = f - fm.unsqueeze(-1)
    vf = (fc * fc).mean(dim=-1)
    cov = (fc @ yc) / yy.shape[-1]
    usable = finite & (vf > 1e-24 * fm * fm + 1e-300)
    safe_vf = torch.where(usable, vf, torch.ones_like(vf))
    c = torch.where(usable, cov / safe_vf, torch.zeros_like(vf))
    d = torch.where(usable, y_mean - c * fm, y_mean.expand_as(vf))
    if _is_constant(yy):
        r2 = torch.ones_like(vf)
    else:
        r2 = torch.where(usable, cov * cov / (safe_vf * vy), torch.zeros_like(vf))
    return c, d, r2.clamp(0.0, 1.0)


def _is_constant(y: Tensor) -> bool:
    spread = float(y.max() - y.min()) if y.numel() else 0.0
    return spread <= 1e-12 * max(float(y.abs().max()) if y.numel() else 0.0, 1e-300)


# --------------------------------------------------------------------------- data prep


@dataclass(frozen=True)
class _Prepared:
    z: Tensor  # (N,) standardised x in [-1, 1]
    y: Tensor  # (N,)
    z_sub: Tensor  # (M,)
    y_sub: Tensor  # (M,)
    center: float
    half: float
    y_mean: float
    y_const: bool
    x_degenerate: bool


def _prepare(x: Tensor, y: Tensor, max_points: int) -> _Prepared:
    x = torch.as_tensor(x).detach().reshape(-1).to(_DT)
    y = torch.as_tensor(y).detach().reshape(-1).to(_DT)
    if x.numel() != y.numel():
        raise ValueError(
            f"x and y must have the same number of samples, got {x.numel()} and {y.numel()}"
        )
    keep = torch.isfinite(x) & torch.isfinite(y)
    x, y = x[keep], y[keep]
    if x.numel() < 2:
        raise ValueError(f"need at least 2 finite (x, y) samples, got {x.numel()}")
    lo, hi = float(x.min()), float(x.max())
    center, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    degenerate = half <= 1e-12 * max(abs(center), 1.0)
    if degenerate:
        half = 1.0
    z = (x - center) / half
    order = torch.argsort(z)
    if z.numel() > max_points:
        idx = torch.linspace(0, z.numel() - 1, max_points, dtype=_DT).round().long()
        sub = order[idx]
    else:
        sub = order
    return _Prepared(
        z=z, y=y, z_sub=z[sub], y_sub=y[sub], center=center, half=half,
        y_mean=float(y.mean()), y_const=_is_constant(y), x_degenerate=degenerate,
    )  # fmt: skip


# --------------------------------------------------------------------------- grid search


def _arg_interval(a: Tensor, b: Tensor, z_lo: float, z_hi: float) -> tuple[Tensor, Tensor]:
    u1, u2 = a * z_lo + b, a * z_hi + b
    return torch.minimum(u1, u2), torch.maximum(u1, u2)


_CHUNK_ELEMS = 1 << 16  # grid values evaluated per block (keeps each block cache-resident)


def _r2_rows(values: Tensor, yc: Tensor, syy: float) -> Tensor:
    """r² of ``y ≈ c·values[k] + d`` for every row ``k`` of ``values`` ``(K, M)``; -1 if unusable."""
    fm = values.mean(dim=1, keepdim=True)
    fc = values - fm
    sff = (fc * fc).sum(dim=1)
    sfy = fc @ yc
    r2 = sfy * sfy / (sff * syy)
    usable = torch.isfinite(r2) & (sff > 1e-24 * values.shape[1] * fm.squeeze(1) ** 2 + 1e-300)
    return torch.where(usable, r2.clamp(0.0, 1.0), torch.full_like(r2, -1.0))


def _grid_r2(fn: SymbolicFunction, p: _Prepared, a_vals: Tensor, b_vals: Tensor) -> Tensor:
    """r² of every ``(a_i, b_j)`` candidate, ``-1`` for illegal ones; shape ``(A, B)``.

    Only legal candidates (argument interval inside the domain, no pole) are evaluated, in
    blocks of about ``_CHUNK_ELEMS`` values.
    """
    aa, bb = (t.reshape(-1) for t in torch.meshgrid(a_vals, b_vals, indexing="ij"))
    lo, hi = _arg_interval(aa, bb, float(p.z.min()), float(p.z.max()))
    idx = fn.interval_ok(lo, hi).nonzero().squeeze(1)
    r2 = torch.full((aa.numel(),), -1.0, dtype=_DT)
    yc = p.y_sub - p.y_sub.mean()
    syy = float((yc * yc).sum())
    rows = max(1, _CHUNK_ELEMS // p.z_sub.numel())
    with torch.no_grad():
        for start in range(0, idx.numel(), rows):
            sel = idx[start : start + rows]
            u = torch.addcmul(bb[sel].unsqueeze(1), aa[sel].unsqueeze(1), p.z_sub.unsqueeze(0))
            r2[sel] = _r2_rows(fn.torch_fn(u), yc, syy)
    return r2.view(a_vals.numel(), b_vals.numel())


def _search_ab(
    fn: SymbolicFunction,
    p: _Prepared,
    a_range: tuple[float, float],
    b_range: tuple[float, float],
    grid_number: int,
    iterations: int,
) -> tuple[float, float] | None:
    a_lo, a_hi = float(a_range[0]), float(a_range[1])
    b_lo, b_hi = float(b_range[0]), float(b_range[1])
    n_a = n_b = max(int(grid_number), 3)
    if fn.symmetry in ("even", "odd") and a_hi > 0 > a_lo:
        n_a = max((n_a * a_hi) // (a_hi - a_lo) + 1, 3)
        a_lo = 0.0
    best: tuple[float, float, float] | None = None  # (r2, a, b)
    for it in range(max(int(iterations), 1)):
        if it > 0:
            n_a = n_b = max(min(int(grid_number), _ZOOM_GRID), 3)
        a_vals = torch.linspace(a_lo, a_hi, int(n_a), dtype=_DT)
        b_vals = torch.linspace(b_lo, b_hi, int(n_b), dtype=_DT)
        r2 = _grid_r2(fn, p, a_vals, b_vals)
        flat = int(torch.argmax(r2))
        i, j = divmod(flat, r2.shape[1])
        r2_best = float(r2[i, j])
        if r2_best < 0:
            break
        if best is None or r2_best >= best[0]:
            best = (r2_best, float(a_vals[i]), float(b_vals[j]))
        a_lo, a_hi = float(a_vals[max(i - 1, 0)]), float(a_vals[min(i + 1, len(a_vals) - 1)])
        b_lo, b_hi = float(b_vals[max(j - 1, 0)]), float(b_vals[min(j + 1, len(b_vals) - 1)])
    return None if best is None else (best[1], best[2])


# --------------------------------------------------------------------------- refinement


def _sse(fn: SymbolicFunction, p: _Prepared, prm: Tensor) -> float:
    a, b, c, d = prm
    with torch.no_grad():
        r = c * fn.torch_fn(a * p.z + b) + d - p.y
    val = float((r * r).sum())
    return val if math.isfinite(val) else math.inf


def _legal(fn: SymbolicFunction, p: _Prepared, a: float, b: float) -> bool:
    lo, hi = _arg_interval(
        torch.tensor(a, dtype=_DT), torch.tensor(b, dtype=_DT), float(p.z.min()), float(p.z.max())
    )
    return bool(fn.interval_ok(lo, hi))


def _jacobian(fn: SymbolicFunction, p: _Prepared, prm: Tensor) -> tuple[Tensor, Tensor]:
    a, b, c, d = prm
    u = (a * p.z + b).detach().requires_grad_(True)
    fu = fn.torch_fn(u)
    (g,) = torch.autograd.grad(fu.sum(), u, allow_unused=True)
    g = torch.zeros_like(u) if g is None else g
    fu = fu.detach()
    r = c * fu + d - p.y
    jac = torch.stack([c * g * p.z, c * g, fu, torch.ones_like(fu)], dim=-1)
    return r, jac


def _refine(fn: SymbolicFunction, p: _Prepared, prm: Tensor, steps: int = 12) -> Tensor:
    """Levenberg–Marquardt on ``(a', b', c, d)``; only improving, legal steps are taken."""
    sse = _sse(fn, p, prm)
    lam = 1e-3
    eye = torch.eye(4, dtype=_DT)
    for _ in range(steps):
        if sse <= 1e-30:
            break
        r, jac = _jacobian(fn, p, prm)
        if not (torch.isfinite(jac).all() and torch.isfinite(r).all()):
            break
        jtj, jtr = jac.T @ jac, jac.T @ r
        improved = False
        for _ in range(8):
            damp = jtj + lam * (torch.diag(torch.diag(jtj)) + 1e-12 * eye)
            try:
                step = torch.linalg.solve(damp, -jtr)
            except RuntimeError:
                lam *= 10.0
                continue
            cand = prm + step
            if torch.isfinite(cand).all() and _legal(fn, p, float(cand[0]), float(cand[1])):
                new = _sse(fn, p, cand)
                if new < sse:
                    rel = (sse - new) / max(sse, 1e-300)
                    prm, sse, lam = cand, new, max(lam / 3.0, 1e-12)
                    improved = rel > 1e-6
                    break
            lam *= 4.0
        if not improved:
            break
    return prm


# --------------------------------------------------------------------------- public fit


def _r2_of(fn: SymbolicFunction, p: _Prepared, prm: Tensor) -> float:
    if p.y_const:
        return 1.0
    sst = float(((p.y - p.y.mean()) ** 2).sum())
    return max(0.0, 1.0 - _sse(fn, p, prm) / sst)


def _safe_point(fn: SymbolicFunction) -> float:
    for b in (0.5, 0.0, 1.0, 2.0, 0.1, -0.5):
        t = torch.tensor(b, dtype=_DT)
        if bool(fn.interval_ok(t, t)):
            return b
    return 0.5


def _constant_fit(fn: SymbolicFunction, p: _Prepared) -> AffineFit:
    """``c = 0`` fit: exact for constant ``y`` (r² = 1), otherwise r² = 0."""
    a, b = (1.0, 0.0) if fn.name in ("x", "0") else (0.0, _safe_point(fn))
    return AffineFit(a=a, b=b, c=0.0, d=p.y_mean, r2=1.0 if p.y_const else 0.0, name=fn.name)


def _to_raw(prm: Tensor, p: _Prepared, fn: SymbolicFunction, r2: float) -> AffineFit:
    a_s, b_s, c, d = (float(v) for v in prm)
    a = a_s / p.half
    b = b_s - a * p.center
    if fn.period:
        b -= fn.period * math.floor(b / fn.period + 0.5)
    return AffineFit(a=a, b=b, c=c, d=d, r2=r2, name=fn.name)


def _fit_prepared(
    fn: SymbolicFunction,
    p: _Prepared,
    a_range: tuple[float, float],
    b_range: tuple[float, float],
    grid_number: int,
    iterations: int,
    refine: bool,
) -> AffineFit:
    if p.y_const or p.x_degenerate or fn.name == "0":
        return _constant_fit(fn, p)
    if fn.name == "x":
        c, d, _ = fit_coefficients_closed_form(p.z.unsqueeze(0), p.y)
        prm = torch.tensor([1.0, 0.0, float(c[0]), float(d[0])], dtype=_DT)
        return _to_raw(prm, p, fn, _r2_of(fn, p, prm))
    ab = _search_ab(fn, p, a_range, b_range, grid_number, iterations)
    if ab is None:
        return _constant_fit(fn, p)
    a_s, b_s = ab
    with torch.no_grad():
        values = fn.torch_fn(a_s * p.z + b_s)
    c, d, _ = fit_coefficients_closed_form(values.unsqueeze(0), p.y)
    prm = torch.tensor([a_s, b_s, float(c[0]), float(d[0])], dtype=_DT)
    if refine:
        prm = _refine(fn, p, prm)
    r2 = _r2_of(fn, p, prm)
    if not math.isfinite(r2):
        return _constant_fit(fn, p)
    return _to_raw(prm, p, fn, r2)


def affine_fit(
    x: Tensor,
    y: Tensor,
    fn: SymbolicFunction | str,
    *,
    a_range: tuple[float, float] = (-10.0, 10.0),
    b_range: tuple[float, float] = (-10.0, 10.0),
    grid_number: int = 101,
    iterations: int = 3,
    refine: bool = True,
    max_points: int = 64,
) -> AffineFit:
    """Fit ``y ≈ c·fn(a·x + b) + d`` (see the module docstring for the algorithm).

    Args:
        x: ``(N,)`` pre-activations (any shape is flattened; non-finite pairs are dropped).
        y: ``(N,)`` post-activations.
        fn: library function or its name/alias.
        a_range, b_range: search box for the *standardised* input ``z ∈ [-1, 1]``.
        grid_number: points per side of the first grid.
        iterations: 1 coarse grid + ``iterations - 1`` zooms.
        refine: run the final Levenberg–Marquardt polish on all points.
        max_points: size of the quantile subsample used by the grid search.

    Returns:
        :class:`AffineFit` with raw-unit parameters and r² on all finite points. When no
        legal ``(a, b)`` exists, or ``y`` is constant, the fit is the constant ``c = 0``,
        ``d = mean(y)`` (r² = 1 for constant ``y``, else 0); ``"x"`` is plain linear
        regression.
    """
    f = get_symbolic(fn)
    p = _prepare(x, y, max_points)
    return _fit_prepared(f, p, a_range, b_range, grid_number, iterations, refine)


# --------------------------------------------------------------------------- suggestion


def score_candidate(r2: float, complexity: float, weight_simple: float = 0.8) -> float:
    """pykan's ranking, sign-flipped so that higher is better.

    ``score = -[w·complexity + (1 - w)·log2(1 + 1e-5 - clip(r2, 0, 1))]`` with
    ``w = weight_simple``. The fit term runs from 0 (r² = 0) to ≈ -16.6 (r² = 1), so each
    unit of complexity is worth a factor ``2**(w/(1-w))`` (16 for ``w = 0.8``) in ``1 - r²``.
    """
    r2c = min(max(float(r2), 0.0), 1.0)
    fit_term = math.log2(1.0 + _R2_FLOOR - r2c)
    return -(weight_simple * float(complexity) + (1.0 - weight_simple) * fit_term)


def suggest_symbolic(
    x: Tensor,
    y: Tensor,
    library: Mapping[str, SymbolicFunction] | Sequence[str] | None = None,
    *,
    weight_simple: float = 0.8,
    topk: int = 5,
    r2_threshold: float | None = None,
    a_range: tuple[float, float] = (-10.0, 10.0),
    b_range: tuple[float, float] = (-10.0, 10.0),
    grid_number: int = 101,
    iterations: int = 3,
    refine: bool = True,
    max_points: int = 64,
) -> list[Candidate]:
    """Fit every library function to one edge and rank them, best first.

    Args:
        x, y: ``(N,)`` pre- and post-activations.
        library: functions to try (``None`` → :data:`~physkan.symbolic.library.DEFAULT_LIBRARY`).
        weight_simple: weight of complexity vs. fit quality, see :func:`score_candidate`.
        topk: number of candidates returned (``None``/``<= 0`` → all).
        r2_threshold: drop candidates whose r² is below this.

    The zero function ``"0"`` is only a candidate when ``y`` is constant (as in pykan it is
    meant for dead edges, not as a default winner against mediocre fits). Ties are broken by
    lower complexity, then by library order.

    Time budget: once :func:`physkan.budget.current_budget` has expired, the functions not
    yet tried are skipped (the budget is marked exhausted); at least one is always fitted.
    """
    budget = current_budget()
    if library is None or not isinstance(library, Mapping):
        lib = resolve_library(library)
    else:
        lib = dict(library)
    p = _prepare(x, y, max_points)
    cands: list[tuple[float, int, int, Candidate]] = []
    for order, (name, fn) in enumerate(lib.items()):
        if fn.name == "0" and not p.y_const:
            continue
        if cands and budget.check():
            break
        fit = _fit_prepared(fn, p, a_range, b_range, grid_number, iterations, refine)
        if fit.name != name:
            fit = AffineFit(fit.a, fit.b, fit.c, fit.d, fit.r2, name)
        if r2_threshold is not None and fit.r2 < r2_threshold:
            continue
        score = score_candidate(fit.r2, fn.complexity, weight_simple)
        cands.append((-score, fn.complexity, order, Candidate(name=name, fit=fit, score=score)))
    cands.sort(key=lambda t: t[:3])
    ranked = [c[3] for c in cands]
    return ranked[:topk] if topk and topk > 0 else ranked
