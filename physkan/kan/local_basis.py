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
import weakref

import torch
from torch import Tensor

from physkan.kan.basis import _is_uniform, _local_general, _local_uniform

__all__ = ["bspline_local", "derivative", "poly_rows", "uniform_bspline_matrix", "uniform_grid"]


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


def poly_rows(f: Tensor, m: tuple[tuple[float, ...], ...], out: Tensor | None = None) -> Tensor:
    """``f (N, in)`` -> ``(N, len(m), in)``: polynomial ``r`` (coefficients ``m[r]``) at ``f``.

    Plain kernels on contiguous ``(N, in)`` slices (no autograd graph; the caller wraps it):
    the powers of ``f`` once, then one scaled add per non-zero coefficient, written straight
    into row ``r`` of the output (the layout of the local contraction), zeros skipped.
    """
    n_pow = max(len(row) for row in m)
    pows = [f]
    for _ in range(2, n_pow):
        pows.append(pows[-1] * f)
    if out is None:
        out = f.new_empty(f.shape[0], len(m), f.shape[1])
    for r, row in enumerate(m):
        o = out[:, r]
        terms = [(p, c) for p, c in enumerate(row) if p > 0 and c != 0.0]
        if not terms:
            o.fill_(row[0])
            continue
        torch.mul(pows[terms[-1][0] - 1], terms[-1][1], out=o)
        for p, c in reversed(terms[:-1]):
            o.add_(pows[p - 1], alpha=c)
        if row[0] != 0.0:
            o.add_(row[0])
    return out


def derivative(m: tuple[tuple[float, ...], ...]) -> tuple[tuple[float, ...], ...]:
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
        return poly_rows(f, m)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (f,) = ctx.saved_tensors
        return (grad * _PowerPoly.apply(f, derivative(ctx.m))).sum(1), None


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
        dropped by the caller, see :func:`physkan.kan.local_kernels.local_rows`).
        Differentiable to any order in ``x`` (uniform grids: closed-form polynomials).
    """
    sentinel = grid.shape[1] - 1
    uniform = uniform_grid(grid)
    if uniform is not None:
        u = (x - uniform[0]) / uniform[1]
        span = torch.floor(u.detach())
        values = _PowerPoly.apply(u - span, uniform_bspline_matrix(k))
        inside = (span >= 0) & (span < sentinel)
        return torch.where(inside, span, float(sentinel)).long(), values
    span, inside, local = _local_general(x, grid, k)
    fill = torch.full((), sentinel, dtype=span.dtype, device=span.device)
    return torch.where(inside, span, fill), torch.stack(local, 1)


class _UniformCache:
    """``grid -> (t0 (in,), h (in,))`` or ``None``, per grid tensor and version.

    Checking uniformity costs a handful of small kernels and a host sync; a layer's grid
    changes only in grid updates (a new tensor or an in-place write, which bumps its
    version), so the answer is kept per tensor (weakly referenced) and version.
    """

    def __init__(self) -> None:
        self.entries: dict[int, tuple[weakref.ref, int, tuple[Tensor, Tensor] | None]] = {}

    def __call__(self, grid: Tensor) -> tuple[Tensor, Tensor] | None:
        hit = self.entries.get(id(grid))
        if hit is not None and hit[0]() is grid and hit[1] == grid._version:
            return hit[2]
        with torch.no_grad():
            params = (grid[:, 0].clone(), grid[:, 1] - grid[:, 0]) if _is_uniform(grid) else None
        if len(self.entries) > 256:  # drop entries of dead grids
            self.entries = {key: e for key, e in self.entries.items() if e[0]() is not None}
        self.entries[id(grid)] = (weakref.ref(grid), grid._version, params)
        return params


#: :func:`uniform_grid` ``(grid)``: ``(t0, h)`` per input of an equally spaced ``grid (in, M)``
#: (first knot, spacing), else ``None``. Cached per tensor and version.
uniform_grid = _UniformCache()
