"""Structured Lagrangians ``L = ½ q̇ᵀM(q)q̇ + A(q)·q̇ − V(q)`` as sums of blocks, linear in the fit.

Most mechanical Lagrangians have this form. Each piece is a *block*: a 1-D feature family
``g_k(u)`` (B-splines or one symbolic function) of a coordinate combination ``u = w·q``
(``w`` a ±1/0 vector: ``u = q_m`` or ``u = q_i − q_j``), times a fixed velocity factor:

* ``kinetic`` (pair ``i, j``): ``φ = ½ q̇ᵀ E q̇ · g(u)`` with ``E = e_i e_jᵀ + e_j e_iᵀ`` (``i ≠ j``)
  or ``e_i e_iᵀ`` — one entry ``M_ij(q)`` of the mass matrix; the double pendulum's coupling
  ``q̇₁q̇₂ cos(q₁ − q₂)`` is one such block (a MultKAN multiplication node ``q̇_i q̇_j × edge``);
* ``gauge`` (index ``a``): ``φ = q̇_a · g(u)`` — one component of a vector potential ``A(q)``
  (magnetic forces; ``u = q_b`` with ``b ≠ a``, since ``q̇_a g(q_a)`` is a total derivative);
* ``potential``: ``φ = g(u)`` — one additive term of ``−V(q)``: separable in the coordinates
  and in the differences ``q_i − q_j`` (the symmetries the decomposition tests look for).

A B-spline block is exactly a KAN edge (``Σ_k c_k B_k(u)``), so such a Lagrangian is a KAN
of fixed topology whose parameters enter the Euler–Lagrange equations *linearly*::

    EL_m(φ) = d/dt ∂φ/∂q̇_m − ∂φ/∂q_m
            = g (Eq̈)_m + g'(w·q̇)(Eq̇)_m − ½(q̇ᵀEq̇) g' w_m        (kinetic)
            = δ_ma g'(w·q̇) − q̇_a g' w_m                          (gauge)
            = −g' w_m                                             (potential)

so "training" is one least-squares solve ``Σ_k c_k EL(φ_k) = 0`` (see
:func:`el_columns`). The scale of ``L`` is fixed by moving the column of ``½ q̇_f²`` to the
right-hand side (coefficient 1: the first constant diagonal mass entry is 1). Everything is
float64; ``q`` in [length], ``q̇`` in [length/time], ``q̈`` in [length/time²].
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import sympy
import torch
from torch import Tensor

from physkan.kan.basis import bspline_basis
from physkan.linalg import lstsq

__all__ = ["Block", "el_columns", "small_linalg", "spline_family", "solve_blocks", "symbolic_family"]

Family = Callable[[Tensor], tuple[Tensor, Tensor]]
Kind = Literal["kinetic", "gauge", "potential"]


@dataclass
class Block:
    """One block of a structured Lagrangian (see the module docstring).

    Attributes:
        kind: ``"kinetic"``, ``"gauge"`` or ``"potential"``.
        i, j: velocity indices (kinetic: the mass-matrix entry; gauge: ``i`` = ``a``).
        w: ``(n,)`` direction of the argument ``u = w·q`` (all zero: a constant block).
        family: ``u (N,) -> (g (N, K), g' (N, K))`` the feature values and derivatives.
        exprs: ``K`` sympy functions of the placeholder ``U`` matching ``family``'s columns.
        label: short text for reports.
    """

    kind: Kind
    i: int
    j: int
    w: Tensor
    family: Family
    exprs: list[sympy.Expr] = field(default_factory=list)
    label: str = ""

    @property
    def width(self) -> int:
        return len(self.exprs)

    def argument(self, q: Tensor) -> Tensor:
        """``u = w·q`` of shape ``(N,)`` for ``q`` of shape ``(N, n)``."""
        return q @ self.w.to(q)

    def velocity_factor(self, qs: list[sympy.Symbol], vs: list[sympy.Symbol]) -> sympy.Expr:
        """The sympy factor multiplying ``g(u)`` (``q̇_iq̇_j``, ``q̇_i²/2``, ``q̇_a`` or 1)."""
        if self.kind == "kinetic":
            return vs[self.i] * vs[self.j] if self.i != self.j else vs[self.i] ** 2 / 2
        if self.kind == "gauge":
            return vs[self.i]
        return sympy.Integer(1)

    def sympy_terms(self, qs: list[sympy.Symbol], vs: list[sympy.Symbol]) -> list[sympy.Expr]:
        """The ``K`` features of this block as sympy expressions in ``q`` and ``q̇``."""
        u = sum((int(c) * q for c, q in zip(self.w.tolist(), qs, strict=True)), sympy.Integer(0))
        factor = self.velocity_factor(qs, vs)
        return [factor * e.subs(U, u) for e in self.exprs]


#: placeholder symbol of a block's 1-D argument ``u``.
U = sympy.Symbol("U", real=True)


def el_columns(block: Block, state: Tensor, qddot: Tensor) -> Tensor:
    """Euler–Lagrange columns of a block's features.

    Args:
        block: the block.
        state: ``(N, 2n)`` = ``[q, q̇]``.
        qddot: ``(N, n)`` observed accelerations.

    Returns:
        ``(N·n, K)``: column ``k`` is ``EL(φ_k)`` flattened sample-major (rows ``N·n``).
    """
    n = qddot.shape[1]
    q, v = state[:, :n], state[:, n:]
    w = block.w.to(state)
    g, dg = block.family(block.argument(q))  # (N, K)
    wv = (v @ w)[:, None, None]  # (N, 1, 1)
    if block.kind == "kinetic":
        E = torch.zeros(n, n, dtype=state.dtype)
        E[block.i, block.j] = 1.0
        E[block.j, block.i] = 1.0
        Ea, Ev = qddot @ E, v @ E  # (N, n)
        P = 0.5 * (v * Ev).sum(1)[:, None, None]
        cols = g[:, None, :] * Ea[:, :, None] + dg[:, None, :] * (wv * Ev[:, :, None] - P * w[None, :, None])
    elif block.kind == "gauge":
        a = block.i
        delta = torch.zeros(n, dtype=state.dtype)
        delta[a] = 1.0
        cols = dg[:, None, :] * (delta[None, :, None] * wv - v[:, a, None, None] * w[None, :, None])
    else:
        cols = -dg[:, None, :] * w[None, :, None]
    return cols.reshape(-1, g.shape[1])


def spline_family(u_data: Tensor, grid: int = 20, k: int = 3) -> tuple[Family, int]:
    """Cubic B-splines on the range of ``u_data``, centred on the data, without a constant.

    Beyond the range the functions are held constant (a rollout may leave it). Each function
    is shifted by its mean over ``u_data`` (so no combination is a constant on
    the data: constants stay in separate blocks) and the first one, then linearly dependent,
    is dropped. ``u_data`` is ``(N,)``; the shift does not change the derivatives.

    Returns:
        ``(family, K)``: ``family(u) -> (B (N, K), B' (N, K))``, ``K = grid + k - 1``.
    """
    lo, hi = float(u_data.min()), float(u_data.max())
    pad = 1e-6 * max(hi - lo, 1.0)
    lo, hi = lo - pad, hi + pad
    h = (hi - lo) / grid
    knots = torch.tensor([lo + h * i for i in range(-k, grid + k + 1)], dtype=torch.float64)[None, :]

    def raw(u: Tensor) -> tuple[Tensor, Tensor]:
        x = u.reshape(-1, 1).to(torch.float64).clamp(lo, hi)  # constant beyond the data range
        B = bspline_basis(x, knots, k)[:, 0, :]
        lower = bspline_basis(x, knots, k - 1)[:, 0, :]
        dB = (lower[:, :-1] - lower[:, 1:]) / h  # uniform knots: B' = (B^{k-1}_i - B^{k-1}_{i+1})/h
        return B[:, 1:], dB[:, 1:]

    mean = raw(u_data)[0].mean(0)

    def family(u: Tensor) -> tuple[Tensor, Tensor]:
        B, dB = raw(u)
        return B - mean, dB

    return family, grid + k - 1


def symbolic_family(exprs: list[sympy.Expr]) -> Family:
    """A family of closed-form functions of ``U`` with derivatives (sympy -> torch)."""
    from physkan.symbolic.parse import lambdify_torch

    fns = [lambdify_torch(e, [U.name]) for e in exprs]
    dfns = [lambdify_torch(sympy.diff(e, U), [U.name]) for e in exprs]

    def family(u: Tensor) -> tuple[Tensor, Tensor]:
        x = u.reshape(-1, 1).to(torch.float64)
        ones = torch.ones(x.shape[0], dtype=x.dtype)
        g = torch.stack([f(x).reshape(-1) * ones for f in fns], 1)
        dg = torch.stack([f(x).reshape(-1) * ones for f in dfns], 1)
        return g, dg

    return family


@contextmanager
def small_linalg() -> Iterator[None]:
    """Run small dense solves on one thread (restored after).

    The matrices here are at most a few thousand by a few hundred; on a loaded machine a
    multi-threaded LAPACK call of that size spends far longer waiting for its threads than
    computing (measured: QR of 4000 x 141 in 0.03 s on 1 thread, 1.3 s on 2 busy threads).
    The result does not depend on the thread count.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class Solution:
    """Least-squares solution of a set of blocks (see :func:`solve_blocks`).

    Attributes:
        coefs: one ``(K,)`` tensor per block (the fixed column's coefficient is 1).
        residual: ``|A c + b| / |b|``, the relative Euler–Lagrange residual (dimensionless).
    """

    coefs: list[Tensor]
    residual: float


def solve_blocks(cols: list[Tensor], fixed: Tensor, keep: list[int] | None = None) -> Solution:
    """Minimum-norm least squares ``Σ_k c_k col_k = −fixed`` over the ``keep`` blocks.

    Args:
        cols: per block, its ``(R, K_b)`` Euler–Lagrange columns (from :func:`el_columns`).
        fixed: ``(R,)`` column of the scale-fixing term (coefficient 1).
        keep: indices of the blocks used (default all); the others get zero coefficients.

    Columns are scaled to unit norm first, so the minimum-norm choice inside the gauge null
    space (e.g. ``x ẏ`` vs ``y ẋ``: only their antisymmetric part is physical) is the
    symmetric one and does not depend on the units of each feature.
    """
    keep = list(range(len(cols))) if keep is None else keep
    rhs = -fixed
    norm_b = float(rhs.norm()) or 1.0
    coefs = [torch.zeros(c.shape[1], dtype=fixed.dtype) for c in cols]
    if not keep:
        return Solution(coefs, 1.0)
    A = torch.cat([cols[b] for b in keep], 1)
    scale = A.norm(dim=0).clamp_min(1e-300)
    As, bs = A / scale, rhs
    with small_linalg():
        if As.shape[0] > As.shape[1] + 1:  # QR-compress the rows: same solution, small SVD
            r = torch.linalg.qr(torch.cat([As, bs[:, None]], 1), mode="r").R
            As, bs = r[:, :-1], r[:, -1]
        sol = lstsq(As, bs[:, None], rcond=1e-12)[:, 0] / scale
    res = float((A @ sol - rhs).norm()) / norm_b
    start = 0
    for b in keep:
        coefs[b] = sol[start : start + cols[b].shape[1]]
        start += cols[b].shape[1]
    return Solution(coefs, res)
