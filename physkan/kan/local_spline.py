"""Local-support B-spline contraction: a KAN layer's spline branch from the ``k + 1`` active
functions per input.

A B-spline of order ``k`` has only ``k + 1`` non-zero functions at each point. The spline
branch of a layer is

    y[b, o] = sum_i sum_{r=0..k} w[b, r, i] * C[i * nb + span[b, i] - k + r, o]

with ``w (N, k+1, in)`` the local basis values (zero where a function does not exist) and
``C (in * nb, out)`` the (scaled, masked) coefficients. Flattened, ``y = A(w, C)`` for the
row table of :func:`~physkan.kan.local_kernels.local_rows`. Three linear operators close
under differentiation (:mod:`physkan.kan.local_kernels`):

* ``A(w, C)`` ``(N, out)``, ``D(g, C)`` ``(N, n)``, ``S(w, g)`` ``(R, out)``, with
  ``dA/dw = D``, ``dA/dC = S``, ``dD/dg = A``, ``dD/dC = S``, ``dS/dw = D``, ``dS/dg = A``,

so any order of derivatives comes from the same three kernels (:class:`_Apply` and co.).

Two routes give the same numbers:

* **fused** (uniform grids, the default after grid init and ``grid_eps = 1`` updates): one
  autograd node, :class:`~physkan.kan.local_fused.UniformSpline`: closed-form local
  polynomials copied as windows of ``k + 1`` adjacent columns into a (reused) dense basis
  with the base branch as extra columns, so the forward and both backward products are
  single GEMMs of the dense matmul's shape, plus one ``index_select`` of windows for ``dx``. A backward that must itself be
  differentiable (``create_graph=True``: Hessians of physics losses) differentiates the
  composable route.
* **composable** (any grid): :func:`~physkan.kan.local_basis.bspline_local` (differentiable
  to any order) and :class:`_Apply`.

:func:`prefer_local` is the cost rule that picks this path over the dense basis matmul.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor
from torch.autograd import Function

from physkan.kan.local_basis import bspline_local, uniform_grid
from physkan.kan.local_fused import UniformSpline
from physkan.kan.local_kernels import Rows, apply, dot, local_rows, outer

__all__ = ["local_spline_contract", "prefer_local", "MIN_LOCAL_SAVING", "MIN_LOCAL_WORK"]

#: The local path needs ``n_basis >= k + 1 + MIN_LOCAL_SAVING`` (``G >= 1 + MIN_LOCAL_SAVING``):
#: otherwise it skips (almost) no basis function.
MIN_LOCAL_SAVING = 1
#: ... and ``batch * in_dim * out_dim`` at least this. First-order steps (one layer fwd +
#: bwd, ``scripts/bench_layer.py --crossover``, 1 thread) now favour the fused local route at
#: every measured shape (local / dense 0.34-0.65, discovery sizes ``1000 x 2 -> 5`` included),
#: but a backward with ``create_graph`` (physics losses: Hessians) differentiates the
#: composable route, which loses below this size (local / dense 1.05-1.65 at ``1000 x 2 -> 5``
#: to ``1024 x 16 -> 16``, float32 and float64), and the layer cannot tell at forward time.
MIN_LOCAL_WORK = 1 << 18


def prefer_local(n_points: int, in_dim: int, out_dim: int, n_basis: int, k: int) -> bool:
    """Cost rule: whether the local path should beat the dense basis matmul.

    The dense path does ``N * in * n_basis * out`` multiply-adds per GEMM (three GEMMs in a
    training step) and writes an ``(N, in * n_basis)`` basis; the local one
    ``N * in * (k+1) * out`` in its forward kernel and two GEMMs in backward, plus a fixed
    cost of a few extra kernels. So: ``n_basis >= k + 1 + MIN_LOCAL_SAVING`` and
    ``N * in * out >= MIN_LOCAL_WORK``.
    """
    return n_basis >= k + 1 + MIN_LOCAL_SAVING and n_points * in_dim * out_dim >= MIN_LOCAL_WORK


class _Apply(Function):
    @staticmethod
    def forward(ctx: Any, w: Tensor, coef: Tensor, rows: Rows) -> Tensor:
        ctx.save_for_backward(w, coef)
        ctx.rows = rows
        return apply(w, coef, rows)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        w, coef = ctx.saved_tensors
        gw = _Dot.apply(g, coef, ctx.rows) if ctx.needs_input_grad[0] else None
        gc = _Outer.apply(w, g, ctx.rows) if ctx.needs_input_grad[1] else None
        return gw, gc, None


class _Dot(Function):
    @staticmethod
    def forward(ctx: Any, g: Tensor, coef: Tensor, rows: Rows) -> Tensor:
        ctx.save_for_backward(g, coef)
        ctx.rows = rows
        return dot(g, coef, rows)

    @staticmethod
    def backward(ctx: Any, dz: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        g, coef = ctx.saved_tensors
        gg = _Apply.apply(dz, coef, ctx.rows) if ctx.needs_input_grad[0] else None
        gc = _Outer.apply(dz, g, ctx.rows) if ctx.needs_input_grad[1] else None
        return gg, gc, None


class _Outer(Function):
    @staticmethod
    def forward(ctx: Any, w: Tensor, g: Tensor, rows: Rows) -> Tensor:
        ctx.save_for_backward(w, g)
        ctx.rows = rows
        return outer(w, g, rows)

    @staticmethod
    def backward(ctx: Any, dc: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        w, g = ctx.saved_tensors
        gw = _Dot.apply(g, dc, ctx.rows) if ctx.needs_input_grad[0] else None
        gg = _Apply.apply(w, dc, ctx.rows) if ctx.needs_input_grad[1] else None
        return gw, gg, None


def _composable(x: Tensor, grid: Tensor, k: int, coef: Tensor) -> Tensor:
    """The contraction from differentiable pieces (any grid, derivatives of any order)."""
    span, values = bspline_local(x, grid, k)  # (N, in), (N, k+1, in)
    rows = local_rows(span, grid.shape[1] - 1 - k, k)
    if rows.valid is not None:
        values = torch.where(rows.valid, values, 0.0)
    return _Apply.apply(values.reshape(x.shape[0], -1), coef, rows)


def local_spline_contract(
    x: Tensor, grid: Tensor, k: int, coef: Tensor, base: Tensor | None = None, w_base: Tensor | None = None
) -> Tensor:
    """Spline branch ``sum_i spline_i(x_i)`` (plus ``base @ w_base``) through the local path.

    Args:
        x: inputs ``(N, in)``.
        grid: knots ``(in, M)`` of a B-spline basis of order ``k`` (``M - 1 - k`` functions).
        coef: effective coefficients ``(in * n_basis, out)`` (scales and masks folded in,
            as :meth:`~physkan.kan.layer.KANLayer.numeric_weights` returns them).
        base, w_base: optional base branch, values ``(N, in)`` (e.g. ``silu(x)``) and weights
            ``(in, out)``; on uniform grids it shares the spline branch's GEMMs.
    Returns:
        ``(N, out)``, equal to ``bspline_basis(x, grid, k).reshape(N, -1) @ coef`` (+ ``base @
        w_base``), differentiable to any order in every tensor argument.
    """
    if (base is None) != (w_base is None):
        raise ValueError("base and w_base: give both or neither")
    uniform = uniform_grid(grid)
    if uniform is None:
        y = _composable(x, grid, k, coef)
        return y if base is None else y + base @ w_base
    route = functools.partial(_composable_xc, grid, k)
    return UniformSpline.apply(x, coef, base, w_base, uniform[0], uniform[1], k, route)


def _composable_xc(grid: Tensor, k: int, x: Tensor, coef: Tensor) -> Tensor:
    """:func:`_composable` with the grid bound first (the fused route's create_graph fallback)."""
    return _composable(x, grid, k, coef)
