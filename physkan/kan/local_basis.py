"""Local B-spline evaluation: the ``k + 1`` functions that are non-zero at each point.

:func:`bspline_local` returns, per point and input, the knot span and the ``k + 1`` local
values (closed-form polynomials on uniform grids, the de Boor triangle otherwise), in the
layout ``(N, k + 1, in)`` that the local contraction (:mod:`physkan.kan.local_spline`)
consumes. Scattered at ``span - k + r`` they are :func:`physkan.kan.basis.bspline_basis`
exactly; derivatives of any order are exact (``create_graph=True``).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from physkan.kan.basis import _is_uniform, _local_general, _local_uniform

__all__ = ["bspline_local", "bspline_local_masks", "uniform_bspline_matrix"]


@functools.lru_cache(maxsize=16)
def uniform_bspline_matrix(k: int) -> tuple[tuple[float, ...], ...]:
    """Power-basis coefficients ``M[r][p]`` of the uniform B-spline of order ``k``.

    On a uniform grid the ``k + 1`` functions that are non-zero in a knot interval are
    polynomials in the offset ``f`` in ``[0, 1)``: ``values[r] = sum_p M[r][p] * f**p``. The
    entries are multiples of ``1 / k!``; they are solved in float64 and rounded to them.
    """
    nodes = (torch.arange(k + 1, dtype=torch.float64)[:, None] + 0.5) / (k + 1)
    _, _, values = _local_uniform(nodes, torch.arange(2, dtype=torch.float64)[None, :], k)
    vander = nodes ** torch.arange(k + 1, dtype=torch.float64)  # (k+1 nodes, k+1 powers)
    fact = math.factorial(k)
    m = torch.round(torch.linalg.solve(vander, torch.cat(values, 1)) * fact) / fact  # (p, r)
    return tuple(tuple(float(v) for v in col) for col in m.T)


def _poly_values(f: Tensor, m: tuple[tuple[float, ...], ...]) -> Tensor:
    """``(N, in)`` -> ``(N, len(m), in)``: polynomial ``r`` (coefficients ``m[r]``) at ``f``.

    Horner's rule with broadcasting (one ``addcmul`` per degree) writes the result directly
    in its ``(N, R, in)`` layout: no stack on the last axis, no transpose copy.
    """
    n_pow = max(len(row) for row in m)
    rows = [list(row) + [0.0] * (n_pow - len(row)) for row in m]
    coeffs = torch.tensor(rows, dtype=f.dtype, device=f.device)  # (R, P)
    fu = f.unsqueeze(1)  # (N, 1, in)
    acc = coeffs[:, -1:].expand(f.shape[0], len(m), f.shape[1])
    if n_pow == 1:
        return acc.contiguous()
    for p in range(n_pow - 2, -1, -1):
        acc = torch.addcmul(coeffs[:, p : p + 1], acc, fu)
    return acc


def _derivative(m: tuple[tuple[float, ...], ...]) -> tuple[tuple[float, ...], ...]:
    """Coefficients of the derivative of every polynomial in ``m``."""
    return tuple(tuple(p * c for p, c in enumerate(row) if p > 0) or (0.0,) for row in m)


class _PowerPoly(torch.autograd.Function):
    """``f (N, in)`` -> ``(N, k+1, in)`` polynomials of :func:`uniform_bspline_matrix`.

    Backward uses the derivative polynomials through this same Function, so derivatives of
    any order (Hessians of physics losses) are exact.
    """

    @staticmethod
    def forward(ctx, f: Tensor, m: tuple[tuple[float, ...], ...]) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(f)
        ctx.m = m
        return _poly_values(f, m)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (f,) = ctx.saved_tensors
        return (grad * _PowerPoly.apply(f, _derivative(ctx.m))).sum(1), None


def bspline_local(x: Tensor, grid: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The ``k + 1`` local B-spline values at each point, without the dense basis.

    Args:
        x: points ``(N, in)``.
        grid: knots ``(in, M)``; the basis has ``M - 1 - k`` functions.
    Returns:
        ``span (N, in)`` (long): the knot interval ``t[span] <= x < t[span + 1]`` in
        ``[0, M - 2]``, or the sentinel ``M - 1`` for points outside ``[t[0], t[M-1])``;
        ``values (N, k + 1, in)`` (note the layout: rows of ``in`` values, cheap to build):
        ``values[:, r]`` is function ``span - k + r`` of the de Boor recursion (finite;
        functions with an index outside ``[0, M - 1 - k)`` and sentinel points must be
        dropped by the caller, see :func:`bspline_local_masks`).
        Differentiable to any order in ``x`` (uniform grids: closed-form polynomials).
    """
    sentinel = grid.shape[1] - 1
    if _is_uniform(grid):
        u = (x - grid[:, 0]) / (grid[:, 1] - grid[:, 0])
        span = torch.floor(u.detach())
        values = _PowerPoly.apply(u - span, uniform_bspline_matrix(k))
        inside = (span >= 0) & (span < sentinel)
        return torch.where(inside, span, float(sentinel)).long(), values
    span, inside, local = _local_general(x, grid, k)
    fill = torch.full((), sentinel, dtype=span.dtype, device=span.device)
    return torch.where(inside, span, fill), torch.stack(local, 1)


def bspline_local_masks(n_knots: int, k: int, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """Lookup tables by span code (see :func:`bspline_local`) for ``M = n_knots`` knots.

    Returns:
        ``valid (M, k + 1)`` (bool): whether function ``span - k + r`` exists (all false for
        the sentinel ``M - 1``), and ``index (M, k + 1)`` (long): that function's index,
        clamped into ``[0, M - 1 - k)``.
    """
    n_basis = n_knots - 1 - k
    pos = torch.arange(n_knots, device=device)[:, None] - k + torch.arange(k + 1, device=device)
    valid = (pos >= 0) & (pos < n_basis)
    valid[-1] = False
    return valid, pos.clamp(0, n_basis - 1)
