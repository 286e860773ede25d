"""Exact formulas from a learned Hamiltonian: KAN-guided separation, sparse gradient fits.

Given a Hamiltonian network ``H(z)`` (``z = [q, p]``, ``(N, 2n) -> (N,)``) trained with
the symplectic loss, and the observed ``zdot (N, 2n)``:

1. the additive groups of ``H`` are read off the network's Hessian
   (:func:`physkan.interpret.modularity.separability`; ``T(p) + V(q)`` splits at least in
   two, Kepler into ``{x, y}, {p_x}, {p_y}``);
2. within a group of two variables ``(a, b)`` an inner combination ``u(a, b)`` (``a^2 + b^2``,
   ``a - b``, ``a + b``, ``a b``, ``a / b``) is accepted when the observed gradient is
   parallel to ``grad u`` (``H_a u_b = H_b u_a``: the part is a function of ``u`` alone);
3. the part of each group is the sparsest combination ``sum_k c_k phi_k`` of library
   functions of its variables (or of ``u``) whose gradient matches the *observed*
   ``dH/dz_g`` (``-p_dot`` for ``q``, ``q_dot`` for ``p``): linear least squares over every
   subset of up to :data:`MAX_TERMS` features (:func:`sparse_gradient_fit`); the gradient
   data fix the coefficients, so noise averages out, and each is snapped to a simple
   rational when that costs < 1 % of the error (:func:`gradient_refit`). Constant terms
   drop out: H is fixed up to an additive constant, its scale by the data.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from fractions import Fraction

import sympy
import torch
from torch import Tensor

from physkan.budget import current_budget
from physkan.interpret.modularity import _components, interaction_matrix
from physkan.linalg import lstsq
from physkan.physics.invariants import snap_rational
from physkan.strategies.base import Reporter
from physkan.symbolic.library import resolve_library
from physkan.symbolic.parse import lambdify_torch, plain_symbols

__all__ = [
    "additive_parts",
    "gradient_refit",
    "hamiltonian_terms",
    "pair_combination",
    "sparse_gradient_fit",
    "symbolic_hamiltonian",
    "vector_field_error",
]

#: most rows used for the Hessian test (its cost grows with N).
MAX_ROWS = 400
#: most terms of one additive part.
MAX_TERMS = 3
#: library of the parts when ``[discover].library`` is not set.
DEFAULT_LIBRARY = ("x", "x^2", "x^3", "x^4", "1/x", "1/x^2", "sqrt", "1/sqrt", "sin", "cos", "exp")
#: inner combinations of two variables tested by gradient parallelism.
PAIR_COMBINATIONS: dict[str, Callable[[sympy.Expr, sympy.Expr], sympy.Expr]] = {
    "a^2+b^2": lambda a, b: a**2 + b**2, "a-b": lambda a, b: a - b, "a+b": lambda a, b: a + b,
    "a*b": lambda a, b: a * b, "a/b": lambda a, b: a / b,
}  # fmt: skip
#: largest relative violation of ``H_a u_b = H_b u_a`` that still accepts ``u``.
PARALLEL_GATE = 1e-2
#: two variables share a part when ``S_ab / sqrt(S_aa S_bb)`` of the Hessian scores exceeds this.
COUPLING_GATE = 0.3


def vector_field_error(H: sympy.Expr, names: Sequence[str], z: Tensor, zdot: Tensor) -> float:
    """Relative RMSE of ``J grad H`` against ``zdot (N, 2n)`` (divided by ``std(zdot)``)."""
    pred = _field_columns([H], names, z)[..., 0]
    if not bool(torch.isfinite(pred).all()):
        return math.inf
    return float((pred - zdot).pow(2).mean().sqrt() / (zdot.std() or 1.0))


def _field_columns(terms: Sequence[sympy.Expr], names: Sequence[str], z: Tensor) -> Tensor:
    """``J grad phi_k`` at ``z``: ``(N, 2n, K)`` (``J grad = [d/dp, -d/dq]``)."""
    n = len(names) // 2
    syms = [sympy.Symbol(v) for v in names]
    cols = []
    for term in terms:
        grads = [sympy.diff(term, s) for s in syms]
        field = [*grads[n:], *(-g for g in grads[:n])]
        vals = [lambdify_torch(f, names)(z).reshape(-1) * torch.ones(len(z), dtype=z.dtype) for f in field]
        cols.append(torch.stack(vals, 1))
    return torch.stack(cols, 2)


def hamiltonian_terms(expr: sympy.Expr) -> list[sympy.Expr]:
    """The non-constant terms of ``expr`` without their numeric coefficients."""
    out: list[sympy.Expr] = []
    for term in sympy.Add.make_args(sympy.expand(plain_symbols(expr))):
        _, rest = term.as_coeff_Mul()
        if rest.free_symbols and rest not in out:
            out.append(rest)
    return out


def gradient_refit(
    terms: Sequence[sympy.Expr], names: Sequence[str], z: Tensor, zdot: Tensor, *, snap: bool = True
) -> tuple[sympy.Expr, float]:
    """``H = sum_k c_k terms_k`` with ``c`` from least squares on Hamilton's equations.

    Args:
        terms: sympy terms in the plain symbols ``names`` (``[q..., p...]``).
        z, zdot: ``(N, 2n)`` states and their observed time derivatives.
        snap: snap every ``c_k`` to the nearest simple rational (denominator <= 12) when
            that raises the field error by less than 2 % (on noisy data the error is the
            noise floor, so a coefficient 0.9995 becomes 1; exact data keep ~1e-9 errors
            only for exact rationals).

    Returns:
        (formula, relative RMSE of its vector field on ``(z, zdot)``).
    """
    a = _field_columns(terms, names, z)  # (N, 2n, K)
    if not bool(torch.isfinite(a).all()):
        return sympy.Integer(0), math.inf
    sol = lstsq(a.reshape(-1, len(terms)), zdot.reshape(-1, 1))[:, 0]
    raw = sum((sympy.Float(float(c)) * t for c, t in zip(sol, terms, strict=True)), sympy.Integer(0))
    raw_err = vector_field_error(raw, names, z, zdot)
    if not snap:
        return raw, raw_err
    coefs: list[sympy.Expr] = [sympy.Float(float(c)) for c in sol]
    best, best_err = raw, raw_err
    for k, c in enumerate(sol):  # one coefficient at a time: a 1.37 stays, a 0.5 snaps
        trial = [*coefs[:k], _simple(float(c)), *coefs[k + 1 :]]
        expr = sum((ck * t for ck, t in zip(trial, terms, strict=True)), sympy.Integer(0))
        err = vector_field_error(expr, names, z, zdot)
        if err <= SNAP_COST * raw_err + 1e-9:
            coefs, best, best_err = trial, expr, err
    return best, best_err


#: snapping may raise the field error by this factor (noisy data: the noise floor dominates).
SNAP_COST = 1.02


def _simple(value: float) -> sympy.Expr:
    """The nearest rational with denominator <= 12 (0 below 1e-9); kept only if it costs
    little error (:func:`gradient_refit`)."""
    if abs(value) < 1e-9:
        return sympy.Integer(0)
    frac = Fraction(value).limit_denominator(12)
    return sympy.Rational(frac.numerator, frac.denominator) if frac else snap_rational(value)


def _columns(exprs: Sequence[sympy.Expr], names: Sequence[str], z: Tensor) -> Tensor:
    """Values of ``exprs`` at ``z (N, d)``: ``(N, len(exprs))``."""
    return torch.stack([lambdify_torch(e, names)(z).reshape(-1) * torch.ones(len(z), dtype=z.dtype)
                        for e in exprs], 1)  # fmt: skip


def pair_combination(a: str, b: str, names: Sequence[str], z: Tensor, grad: Tensor) -> sympy.Expr | None:
    """The inner combination ``u(a, b)`` whose gradient is parallel to ``grad (N, 2)``
    (the observed ``[dH/da, dH/db]``), or None. Relative violation below :data:`PARALLEL_GATE`."""
    sa, sb = sympy.Symbol(a), sympy.Symbol(b)
    scale = grad.norm(dim=1)
    best, best_err = None, PARALLEL_GATE
    for combo in PAIR_COMBINATIONS.values():
        u = combo(sa, sb)
        du = _columns([sympy.diff(u, sa), sympy.diff(u, sb)], names, z)
        if not bool(torch.isfinite(du).all()):
            continue
        cross = grad[:, 0] * du[:, 1] - grad[:, 1] * du[:, 0]
        err = float((cross.abs() / (scale * du.norm(dim=1)).clamp_min(1e-300)).median())
        if err < best_err:
            best, best_err = u, err
    return best


def _features(group: Sequence[str], names: Sequence[str], z: Tensor, grad: Tensor,
              library: Sequence[str]) -> list[sympy.Expr]:  # fmt: skip
    """Candidate terms of one additive part (library functions of its variables or of ``u``)."""
    fns = list(resolve_library(list(library)).values())
    syms = [sympy.Symbol(v) for v in group]
    inner: list[sympy.Expr] = list(syms)
    if len(group) == 2:
        u = pair_combination(group[0], group[1], names, z, grad)
        inner = [u] if u is not None else inner
    elif len(group) > 2:
        inner.append(sum((s**2 for s in syms), sympy.Integer(0)))
    feats: list[sympy.Expr] = []
    for v in inner:
        for fn in fns:
            term = fn.sympy_fn(v)
            if term.free_symbols and term not in feats:
                feats.append(term)
    if len(inner) > 1 and len(group) == 2:  # products of simple functions of the two variables
        feats += [syms[0] ** i * syms[1] ** j for i in (1, 2) for j in (1, 2)]
    return feats


def sparse_gradient_fit(
    features: Sequence[sympy.Expr], group: Sequence[str], names: Sequence[str], z: Tensor, grad: Tensor,
    *, max_terms: int = MAX_TERMS,
) -> tuple[list[sympy.Expr], float]:  # fmt: skip
    """The sparsest subset of ``features`` whose gradients (w.r.t. ``group``) match
    ``grad (N, len(group))`` by least squares; returns (terms, relative RMSE).

    Every subset of 1..``max_terms`` features is solved (batched normal equations); the
    answer is the smallest subset within 20 % (plus 1e-9) of the best error met.
    """
    syms = [sympy.Symbol(v) for v in group]
    cols, kept = [], []
    for f in features:
        c = _columns([sympy.diff(f, s) for s in syms], names, z)
        if bool(torch.isfinite(c).all()) and float(c.abs().max()) > 0:
            cols.append(c.reshape(-1))
            kept.append(f)
    if not kept:
        return [], math.inf
    a, y = torch.stack(cols, 1), grad.reshape(-1)
    norm = a.norm(dim=0)
    a = a / norm
    gram, rhs, yy = a.T @ a, a.T @ y, float(y @ y) or 1.0
    best: list[tuple[float, tuple[int, ...]]] = []
    for size in range(1, min(max_terms, len(kept)) + 1):
        combos = torch.tensor(list(itertools.combinations(range(len(kept)), size)))
        g = gram[combos[:, :, None], combos[:, None, :]] + 1e-13 * torch.eye(size, dtype=a.dtype)
        b = rhs[combos]
        sol = torch.linalg.solve(g, b)
        k = int((sol * b).sum(1).argmax())  # least residual = most explained
        cols_k = a[:, combos[k]]  # the residual itself: the normal equations cancel digits
        resid = y - cols_k @ lstsq(cols_k, y[:, None])[:, 0]
        best.append((float(resid.norm()) / math.sqrt(yy), tuple(combos[k].tolist())))
    floor = min(e for e, _ in best)
    err, chosen = next((e, c) for e, c in best if e <= 1.2 * floor + 1e-9)
    return [kept[i] for i in chosen], err


def additive_parts(H: Callable[[Tensor], Tensor], z: Tensor) -> list[list[int]]:
    """Groups of variables of ``H`` that interact (normalised Hessian scores of the network,
    :func:`~physkan.interpret.modularity.interaction_matrix`, above :data:`COUPLING_GATE`)."""
    score = interaction_matrix(H, z, "add")
    diag = score.diagonal().clamp_min(1e-12)
    relative = score / (diag[:, None] * diag[None, :]).sqrt()
    return _components(relative > COUPLING_GATE)


def symbolic_hamiltonian(
    model: Callable[[Tensor], Tensor],
    z: Tensor,
    zdot: Tensor,
    names: Sequence[str],
    say: Reporter,
    *,
    kan_error: float,
    library: Sequence[str] | None = None,
) -> tuple[sympy.Expr | None, float]:
    """Closed form of H from the learned ``model``'s structure and the data (module docstring).

    Args:
        model: learned H ``(N, 2n) -> (N,)`` or ``(N, 1)``.
        z, zdot: ``(N, 2n)`` training states and derivatives.
        names: ``[q..., p_q...]``.
        kan_error: relative vector-field RMSE of ``model`` (reported only).
        library: names of the symbolic functions (default :data:`DEFAULT_LIBRARY`).

    Returns:
        (formula or None, relative vector-field RMSE of the formula on ``(z, zdot)``).
    """

    def H(x: Tensor) -> Tensor:
        out = model(x)
        return out[:, 0] if out.dim() == 2 else out

    n = len(names) // 2
    grad_obs = torch.cat([-zdot[:, n:], zdot[:, :n]], 1)  # observed dH/dz
    groups = additive_parts(H, z[:MAX_ROWS])
    say(f"additive parts of H (network error {kan_error:.1e}): {[[names[i] for i in g] for g in groups]}")
    best: tuple[sympy.Expr | None, float] = (None, math.inf)
    for grouping in _groupings(groups, n):
        found = _fit_parts(grouping, names, z, zdot, grad_obs, library or DEFAULT_LIBRARY, say)
        if found[1] < best[1]:
            best = found
        if best[1] <= EXACT_GATE or current_budget().check():
            break
    return best


#: a formula this close (relative field error) ends the search over groupings.
EXACT_GATE = 1e-2


def _groupings(groups: list[list[int]], n: int) -> list[list[list[int]]]:
    """The network's additive parts, then (if different) the same parts split into their
    coordinates and momenta (``T(p) + V(q)``, the usual mechanical form), for a network too
    rough to show that split."""
    split = [part for g in groups for part in ([i for i in g if i < n], [i for i in g if i >= n]) if part]
    return [groups] if split == groups else [groups, split]


def _fit_parts(groups: list[list[int]], names: Sequence[str], z: Tensor, zdot: Tensor, grad_obs: Tensor,
               library: Sequence[str], say: Reporter) -> tuple[sympy.Expr | None, float]:  # fmt: skip
    """Sparse gradient fit of each part, then the joint refit of all terms."""
    terms: list[sympy.Expr] = []
    for group in groups:
        if current_budget().check():
            return None, math.inf
        sub = [names[i] for i in group]
        feats = _features(sub, names, z, grad_obs[:, group], library)
        found, err = sparse_gradient_fit(feats, sub, names, z, grad_obs[:, group])
        say(f"part in {sub}: {found} (relative gradient error {err:.1e})")
        terms += [t for t in found if t not in terms]
    if not terms:
        return None, math.inf
    return gradient_refit(terms, names, z, zdot)
