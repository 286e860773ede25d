"""Fused first-order route of the local B-spline contraction on a uniform grid.

On a grid ``t0 + h * j`` the ``k + 1`` functions that are non-zero at ``x`` are polynomials
in the offset ``f = u - floor(u)``, ``u = (x - t0) / h``. One autograd node does the spline
and base branches of a layer with few, large kernels:

* forward: ``u``, its span and offset, the local values ``(N, k+1, in)`` (closed form), one
  int64 row table ``idx (N, (k+1) * in)`` (``k + 1`` slice adds in floating point, exact, and
  one conversion), ``scatter_add_`` of the values into the dense basis ``B (N, R + in)``
  whose last ``in`` columns are the base values, and one GEMM ``B [C; W_base]``;
* backward (first order): ``d[C; W_base] = B^T g`` (one GEMM on the saved basis) and ``dx``
  from one GEMM ``g [C; W_base]^T``, a ``gather`` of the table's entries and the derivative
  polynomials (the base columns give the base values' gradient).

So a training step runs GEMMs of exactly the dense matmul's shape (``R + in`` columns is
``in * (G + k + 1)``) plus ``O(N in k)`` elementwise work, and the base branch costs no
kernels of its own. Functions that do not exist (ends of the knot vector, points outside
it) are clamped to a valid row of their input and get zero weight; non-finite inputs give
NaN outputs (never an out-of-range row). Large tensors saved for backward come from
:mod:`physkan.kan.buffer_pool` (no page faults in steady-state training). A backward that
must itself be differentiable (``create_graph=True``: Hessians of physics losses)
differentiates the composable route given as ``composable``, so derivatives of any order
stay exact.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.autograd import Function

from physkan.kan.buffer_pool import reusable
from physkan.kan.local_basis import derivative, poly_rows, uniform_bspline_matrix
from physkan.kan.local_kernels import scratch

__all__ = ["UniformSpline", "uniform_local_table"]


#: Row numbers are computed in floating point (cheaper kernels than int64) while exact:
#: below ``2**24`` rows in float32 (also for half-precision inputs); float64 otherwise.
_EXACT_FLOAT32 = 2**24


@functools.lru_cache(maxsize=64)
def _blocks(n_in: int, n_basis: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """First row of each input's block of ``C``: ``i * n_basis``, ``(in,)`` (read-only)."""
    return torch.arange(n_in, dtype=dtype, device=device) * n_basis


def uniform_local_table(
    x: Tensor, t0: Tensor, h: Tensor, n_basis: int, k: int
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Offsets, local values, row table and validity of ``x (N, in)`` on a uniform grid.

    Args:
        x: points ``(N, in)``; t0, h: first knot and spacing per input ``(in,)``.
        n_basis: functions per input (``M - 1 - k`` for ``M`` knots); k: spline order.
    Returns:
        ``f (N, in)`` the offsets in their knot interval; ``values (N, k+1, in)`` the local
        functions ``span - k + r`` (zero where they do not exist); ``idx (N, (k+1)*in)``
        int64 rows ``i * n_basis + span - k + r`` of ``C`` (clamped into input ``i``'s block);
        ``valid (N, k+1, in)`` (``x``'s dtype, 1 where the function exists), or ``None``
        when every function exists.
    """
    n_pts, n_in = x.shape
    u = (x - t0) / h
    span = torch.floor(u)
    lo, hi = (float(v) for v in torch.aminmax(span)) if span.numel() else (k, k)
    if not (math.isfinite(lo) and math.isfinite(hi)):  # NaN / inf: zero weight, NaN values
        span = torch.nan_to_num(span, nan=-1.0, posinf=-1.0, neginf=-1.0)
    local = (n_pts, k + 1, n_in)
    f = torch.sub(u, span, out=reusable("f", (n_pts, n_in), x.dtype, x.device))
    values = poly_rows(f, uniform_bspline_matrix(k), reusable("values", local, x.dtype, x.device))
    wide = x.dtype == torch.float64 or n_in * n_basis >= _EXACT_FLOAT32
    exact = torch.float64 if wide else torch.float32
    span = span.to(exact)
    blocks = _blocks(n_in, n_basis, exact, x.device)
    rows = scratch("rows_f", local, span)
    valid = None
    if lo >= k and hi <= n_basis - 1:  # every function exists
        base = span.add_(blocks - k)
        for r in range(k + 1):
            torch.add(base, r, out=rows[:, r])
    else:
        span.clamp_(-1, n_basis + k)
        valid = reusable("valid", local, x.dtype, x.device)
        for r in range(k + 1):
            j = span + (r - k)
            jc = j.clamp(0, n_basis - 1)
            torch.eq(jc, j, out=valid[:, r])
            torch.add(jc, blocks, out=rows[:, r])
        values.mul_(valid)
    idx = reusable("idx", (n_pts, (k + 1) * n_in), torch.long, x.device)
    return f, values, idx.copy_(rows.view(idx.shape)), valid


class UniformSpline(Function):
    """``x (N, in)``, ``coef (R, out)`` [, ``base (N, in)``, ``w_base (in, out)``] -> ``(N, out)``.

    The spline branch on the uniform grid ``(t0, h)`` plus, when ``base`` is given, the base
    branch ``base @ w_base`` folded into the same GEMM: ``base`` is appended to the dense
    basis as ``in`` extra columns and ``w_base`` to ``coef`` as ``in`` extra rows, so one
    GEMM per product serves both branches. ``composable(x, coef)`` is the differentiable
    spline route used when the backward itself needs a graph (``create_graph=True``).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, coef: Tensor, base: Tensor | None, w_base: Tensor | None,
        t0: Tensor, h: Tensor, k: int, composable: Callable[[Tensor, Tensor], Tensor],
    ) -> Tensor:  # fmt: skip
        n_pts, n_in = x.shape
        n_rows = coef.shape[0]
        f, values, idx, valid = uniform_local_table(x, t0, h, n_rows // n_in, k)
        folded = base is not None
        shape = (n_pts, n_rows + (n_in if folded else 0))
        basis = reusable("basis", shape, x.dtype, x.device).zero_()  # (N, R [+ in])
        basis.scatter_add_(1, idx, values.view(idx.shape))
        both = coef
        if folded:
            basis[:, n_rows:] = base
            both = torch.cat([coef, w_base])
        ctx.save_for_backward(x, coef, base, w_base, both, h, basis, f, idx)
        ctx.k, ctx.valid, ctx.composable = k, valid, composable
        return basis @ both

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, coef, base, w_base, both, h, basis, f, idx = ctx.saved_tensors
        n_rows, k = coef.shape[0], ctx.k
        need_x, need_c, need_b, need_w = ctx.needs_input_grad[:4]
        if torch.is_grad_enabled():  # create_graph: differentiate the composable route
            grads = _graph_grads(ctx.composable, g, (x, coef, base, w_base), ctx.needs_input_grad[:4])
            return (*grads, None, None, None, None)
        gx = gc = gb = gw = None
        if need_c or need_w:
            g_all = (g.T @ basis).T  # = basis^T g, a transposed view of an (out, R [+ in]) matrix
            gc, gw = g_all[:n_rows], (g_all[n_rows:] if base is not None else None)
        if need_x or need_b:
            full = scratch("rows", (g.shape[0], both.shape[0]), g)  # consumed at once below
            torch.mm(g, both.T, out=full)
            if need_x:
                d = full.gather(1, idx).view(g.shape[0], k + 1, x.shape[1])  # g[b] . C[idx[b, n]]
                slope = poly_rows(f, derivative(uniform_bspline_matrix(k)), scratch("slope", d.shape, d))
                if ctx.valid is not None:
                    slope.mul_(ctx.valid)
                gx = d.mul_(slope).sum(1).div_(h)
            if need_b:
                gb = full[:, n_rows:].clone()
        return gx, gc, gb, gw, None, None, None, None


def _graph_grads(
    composable: Callable[[Tensor, Tensor], Tensor], g: Tensor,
    inputs: tuple[Tensor | None, ...], needs: tuple[bool, ...],
) -> list[Tensor | None]:  # fmt: skip
    """Gradients of :class:`UniformSpline` with a graph (``create_graph=True``): the composable
    spline route plus ``base @ w_base``, differentiated by autograd (any order)."""
    x, coef, base, w_base = inputs
    with torch.enable_grad():
        y = composable(x, coef)
        if base is not None:
            y = y + base @ w_base
    wanted = [t for t, need in zip(inputs, needs) if need and t is not None]
    grads = iter(torch.autograd.grad(y, wanted, g, create_graph=True)) if wanted else iter(())
    return [next(grads) if need and t is not None else None for t, need in zip(inputs, needs)]
