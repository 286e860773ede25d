"""Local-support B-spline contraction: a KAN layer's spline branch without a dense basis.

A B-spline of order ``k`` has only ``k + 1`` non-zero functions at each point. The spline
branch of a layer is

    y[b, o] = sum_i sum_{r=0..k} w[b, r, i] * C[i * nb + first[b, i] + r, o]

with ``w (N, k+1, in)`` the local basis values, ``first (N, in)`` the index of the first
non-zero function (rows that do not exist point at an extra zero row of ``C``) and ``C (in * nb, out)`` the (scaled, masked) coefficients. Flattened, it
is ``y = A(w, C)`` with ``w (N, n)`` (``n = in * (k+1)``) and the row table
``idx (N, n)`` into ``C``'s ``R = in * nb`` rows. Three linear operators close under
differentiation, so backward and double backward (Hessians for physics losses) come from
the same three kernels:

* ``A(w, C)[b]      = sum_n w[b, n] C[idx[b, n]]``          ``(N, out)``: ``embedding_bag``
* ``D(g, C)[b, n]   = g[b] . C[idx[b, n]]``                 ``(N, n)``:   GEMM + gather
* ``S(w, g)[r]      = sum_{idx[b, n] = r} w[b, n] g[b]``    ``(R, out)``: scatter + GEMM

with ``dA/dw = D``, ``dA/dC = S``, ``dD/dg = A``, ``dD/dC = S``, ``dS/dw = D``, ``dS/dg = A``.
Only ``A`` runs in the forward pass (``N n out`` multiply-adds instead of ``N R out``).

:func:`prefer_local` is the cost rule that picks this path over the dense basis matmul.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd import Function

from physkan.kan.local_basis import bspline_local, bspline_local_masks

__all__ = ["local_spline_contract", "local_rows", "prefer_local", "MIN_LOCAL_SAVING", "MIN_LOCAL_WORK"]

#: The local path needs ``n_basis >= k + 1 + MIN_LOCAL_SAVING`` (``G >= 1 + MIN_LOCAL_SAVING``):
#: otherwise it skips (almost) no basis function.
MIN_LOCAL_SAVING = 1
#: ... and ``batch * in_dim * out_dim`` at least this: below it the fixed cost of its extra
#: kernels (index table, gather, scatter) outweighs the saved GEMM work. Measured crossover
#: (1 thread, one layer fwd + bwd, local / dense over several runs, ``docs/benchmarks.md``):
#: ``1024 x 8 -> 8`` 0.94-1.09 (a draw: dense kept), ``1024 x 16 -> 16`` 0.86-0.99,
#: ``1024 x 64 -> 64`` 0.49-0.81 at every G >= 3; discovery sizes (``1000 x 2 -> 5``) 1.0-1.4.
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


def _apply(w: Tensor, coef: Tensor, idx: Tensor) -> Tensor:
    """``A``: ``w (N, n)``, ``coef (R, out)``, ``idx (N, n)`` -> ``(N, out)``."""
    return F.embedding_bag(idx, coef, per_sample_weights=w, mode="sum")


class _Workspace(threading.local):
    """Per-thread scratch ``(N, R)`` matrices, reused across steps.

    ``D`` and ``S`` need an ``(N, R)`` intermediate (4 MB for N = 1024, R = 832) that is
    dropped right after; a fresh one per call costs page faults that take as long as the
    GEMM itself. Nothing returned aliases a scratch matrix. At most ``limit`` shapes kept.
    """

    limit = 4

    def __init__(self) -> None:
        self.buffers: dict[tuple, Tensor] = {}

    def get(self, kind: str, shape: tuple[int, int], like: Tensor) -> Tensor:
        key = (kind, shape, like.dtype, like.device)
        buf = self.buffers.pop(key, None)
        if buf is None:
            buf = like.new_empty(shape)
            while len(self.buffers) >= 2 * self.limit:
                self.buffers.pop(next(iter(self.buffers)))
        self.buffers[key] = buf  # most recently used last
        return buf


_WORKSPACE = _Workspace()


def _dot(g: Tensor, coef: Tensor, idx: Tensor) -> Tensor:
    """``D``: ``g (N, out)``, ``coef (R, out)`` -> ``(N, n)``, ``g[b] . coef[idx[b, n]]``."""
    full = _WORKSPACE.get("dot", (g.shape[0], coef.shape[0]), g)
    return torch.mm(g, coef.T.contiguous(), out=full).gather(1, idx)


def _outer(w: Tensor, g: Tensor, idx: Tensor, n_rows: int) -> Tensor:
    """``S``: ``w (N, n)``, ``g (N, out)`` -> ``(R, out)``, the transpose of ``A`` in ``coef``."""
    dense = _WORKSPACE.get("outer", (w.shape[0], n_rows), w).zero_()
    dense.scatter_add_(1, idx, w)  # (N, R), mostly zeros
    return dense.T @ g


class _Apply(Function):
    @staticmethod
    def forward(ctx: Any, w: Tensor, coef: Tensor, idx: Tensor) -> Tensor:
        ctx.save_for_backward(w, coef, idx)
        return _apply(w, coef, idx)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        w, coef, idx = ctx.saved_tensors
        gw = _Dot.apply(g, coef, idx) if ctx.needs_input_grad[0] else None
        gc = _Outer.apply(w, g, idx, coef.shape[0]) if ctx.needs_input_grad[1] else None
        return gw, gc, None


class _Dot(Function):
    @staticmethod
    def forward(ctx: Any, g: Tensor, coef: Tensor, idx: Tensor) -> Tensor:
        ctx.save_for_backward(g, coef, idx)
        return _dot(g, coef, idx)

    @staticmethod
    def backward(ctx: Any, dz: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        g, coef, idx = ctx.saved_tensors
        gg = _Apply.apply(dz, coef, idx) if ctx.needs_input_grad[0] else None
        gc = _Outer.apply(dz, g, idx, coef.shape[0]) if ctx.needs_input_grad[1] else None
        return gg, gc, None


class _Outer(Function):
    @staticmethod
    def forward(ctx: Any, w: Tensor, g: Tensor, idx: Tensor, n_rows: int) -> Tensor:
        ctx.save_for_backward(w, g, idx)
        return _outer(w, g, idx, n_rows)

    @staticmethod
    def backward(ctx: Any, dc: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        w, g, idx = ctx.saved_tensors
        gw = _Dot.apply(g, dc, idx) if ctx.needs_input_grad[0] else None
        gg = _Apply.apply(w, dc, idx) if ctx.needs_input_grad[1] else None
        return gw, gg, None, None


@functools.lru_cache(maxsize=64)
def _row_table(n_in: int, n_knots: int, k: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """``rows (k+1, in * M)``: coefficient row by (offset, input * M + span code), and the
    code offset of each input ``(in,)``. Read-only, cached per shape and device."""
    n_basis = n_knots - 1 - k
    valid, index = bspline_local_masks(n_knots, k, device)
    blocks = torch.arange(n_in, device=device)
    rows = index.T[:, None, :] + (blocks * n_basis)[None, :, None]  # (k+1, in, M)
    rows = torch.where(valid.T[:, None, :], rows, n_in * n_basis).reshape(k + 1, n_in * n_knots)
    return rows, blocks * n_knots


def local_rows(span: Tensor, n_knots: int, k: int) -> Tensor:
    """Row table ``(N, (k+1) * in)`` for the span codes ``span (N, in)`` of :func:`bspline_local`.

    Entry ``(b, r * in + i)`` (the layout of ``bspline_local``'s values) is the row of
    function ``span - k + r`` of input ``i`` in ``coef.reshape(in * n_basis, out)``, or the
    extra zero row ``in * n_basis`` where that function does not exist (ends of the knot
    vector, points outside it). One gather from a table of ``(k+1, in * M)`` entries.
    """
    n_pts, n_in = span.shape
    rows, blocks = _row_table(n_in, n_knots, k, span.device)
    code = (span + blocks).unsqueeze(1).expand(n_pts, k + 1, n_in)
    table = rows.unsqueeze(0).expand(n_pts, k + 1, n_in * n_knots)
    return torch.gather(table, 2, code).view(n_pts, (k + 1) * n_in)  # one pass, final layout


def local_spline_contract(x: Tensor, grid: Tensor, k: int, coef: Tensor) -> Tensor:
    """Spline branch ``sum_i spline_i(x_i)`` through the local-support path.

    Args:
        x: inputs ``(N, in)``.
        grid: knots ``(in, M)`` of a B-spline basis of order ``k`` (``M - 1 - k`` functions).
        coef: effective coefficients ``(in * n_basis, out)`` (scales and masks folded in,
            as :meth:`~physkan.kan.layer.KANLayer.numeric_weights` returns them).
    Returns:
        ``(N, out)``, equal to ``bspline_basis(x, grid, k).reshape(N, -1) @ coef``,
        differentiable to any order in ``x`` and ``coef``.
    """
    span, values = bspline_local(x, grid, k)  # (N, in), (N, k+1, in)
    idx = local_rows(span, grid.shape[1], k)
    table = torch.cat([coef, coef.new_zeros(1, coef.shape[1])])  # + the zero row
    return _Apply.apply(values.view(x.shape[0], -1), table, idx)
