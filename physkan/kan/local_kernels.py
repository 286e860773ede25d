"""Kernels of the local-support B-spline contraction: the row table and three linear maps.

The spline branch of a layer with ``in`` inputs, ``nb`` functions per input and order ``k``
touches, per point ``b`` and input ``i``, the ``k + 1`` consecutive coefficient rows
``i * nb + span[b, i] - k + r`` (``r = 0..k``) of ``C (R, out)`` (``R = in * nb``).
:func:`local_rows` builds that table once per forward (:class:`Rows`: ``idx (N, n)`` with
``n = (k+1) * in`` in the layout ``(N, k+1, in)``, plus the flat positions ``b * R + idx`` of
each entry in an ``(N, R)`` matrix). Entries whose function does not exist (ends of the knot
vector, points outside it) are clamped to a valid row of their input and flagged in
``valid``: the caller zeroes their weights, so ``C`` needs no extra zero row and the GEMM
dimensions stay those of the layer.

The three kernels (no autograd here; :mod:`physkan.kan.local_spline` wraps them):

* :func:`apply` ``A(w, C)[b] = sum_n w[b, n] C[idx[b, n]]``   ``(N, out)``: ``embedding_bag``
* :func:`dot`   ``D(g, C)[b, n] = g[b] . C[idx[b, n]]``        ``(N, n)``: GEMM ``g C^T`` + gather
* :func:`outer` ``S(w, g)[r] = sum_{idx[b, n] = r} w[b, n] g[b]`` ``(R, out)``: scatter + GEMM

``D`` and ``S`` go through an ``(N, R)`` scratch matrix, row by row (cache-friendly gather and
scatter: one point's entries lie in one row), reused across calls (a fresh one costs page
faults that take as long as the GEMM). The GEMMs avoid MKL's slow transposed-left case:
``D`` multiplies by a contiguous ``C^T``, ``S`` computes ``(g^T W)^T``.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Rows", "local_rows", "apply", "dot", "outer", "scratch"]

_INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class Rows:
    """Row table of one local contraction (``N`` points, ``n = (k+1) * in`` entries each).

    Attributes:
        n_rows: ``R``, the number of rows of ``C``.
        k: spline order.
        base: ``(N, in)`` first row of each input's window when every function exists (the
            rows are ``base + r``: the ``(N, n)`` tables are built on demand into scratch).
        full: ``(N, n)`` explicit rows otherwise (int32 where it fits), layout ``(N, k+1, in)``.
        valid: ``(N, k+1, in)`` bool with ``full``: whether the function exists.
    """

    n_rows: int
    k: int
    base: Tensor | None = None
    full: Tensor | None = None
    valid: Tensor | None = None

    @property
    def n_points(self) -> int:
        return (self.base if self.base is not None else self.full).shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        """``(N, n)``."""
        if self.full is not None:
            return tuple(self.full.shape)
        return self.base.shape[0], (self.k + 1) * self.base.shape[1]

    def idx(self) -> Tensor:
        """``(N, n)`` rows of ``C`` (scratch when built from ``base``: use at once)."""
        if self.full is not None:
            return self.full
        offsets, _ = _constants(self.n_points, self.k, self.n_rows, self.base.dtype, self.base.device)
        out = scratch("idx", (self.n_points, self.k + 1, self.base.shape[1]), self.base)
        return torch.add(self.base.unsqueeze(1), offsets, out=out).view(self.shape)

    def flat(self) -> Tensor:
        """``(N * n,)`` position ``b * R + idx`` of each entry in an ``(N, R)`` matrix (scratch)."""
        _, starts = _constants(self.n_points, self.k, self.n_rows, self.base_dtype, self.device)
        out = scratch("flat", self.shape, starts)
        return torch.add(self.idx(), starts, out=out).view(-1)

    @property
    def base_dtype(self) -> torch.dtype:
        return (self.base if self.base is not None else self.full).dtype

    @property
    def device(self) -> torch.device:
        return (self.base if self.base is not None else self.full).device


@functools.lru_cache(maxsize=32)
def _constants(n_pts: int, k: int, n_rows: int, itype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    """Read-only index pieces: offsets ``r (1, k+1, 1)`` and row starts ``b * R (N, 1)``,
    cached per shape (they cost allocations every call)."""
    offsets = torch.arange(k + 1, dtype=itype, device=device)[None, :, None]
    starts = torch.arange(n_pts, dtype=itype, device=device)[:, None] * n_rows
    return offsets, starts


def local_rows(span: Tensor, n_basis: int, k: int) -> Rows:
    """Row table for knot spans ``span (N, in)`` (integer or integral float values).

    Function ``j = span - k + r`` of input ``i`` exists when ``0 <= j < n_basis``: spans below
    ``k`` or above ``n_basis - 1`` (the padded ends of the knot vector, points outside it,
    sentinels) have missing functions, which are clamped and flagged in ``valid``.
    """
    n_pts, n_in = span.shape
    span = span.contiguous()  # (the layout of the outputs below)
    n_rows = n_in * n_basis
    itype = torch.int32 if n_rows * n_pts <= _INT32_MAX else torch.int64
    blocks = torch.arange(n_in, dtype=itype, device=span.device) * n_basis
    lo, hi = (float(v) for v in torch.aminmax(span)) if span.numel() else (k, k)
    if lo >= k and hi <= n_basis - 1:  # every function exists: no mask
        return Rows(n_rows, k, base=span.to(itype) + (blocks - k))
    offsets, _ = _constants(n_pts, k, n_rows, itype, span.device)
    j = span.clamp(-1, n_basis + k).to(itype).unsqueeze(1) - k + offsets
    valid = (j >= 0) & (j < n_basis)
    full = (j.clamp_(0, n_basis - 1) + blocks).view(n_pts, (k + 1) * n_in)
    return Rows(n_rows, k, full=full, valid=valid)


class _Workspace(threading.local):
    """Per-thread scratch ``(N, R)`` matrices, reused across calls (at most ``limit``).

    Nothing returned aliases a scratch matrix (``index_select`` and ``mm`` write new ones).
    """

    limit = 12

    def __init__(self) -> None:
        self.buffers: dict[tuple, Tensor] = {}

    def get(self, shape: tuple[int, ...], like: Tensor, kind: str = "rows") -> Tensor:
        key = (kind, shape, like.dtype, like.device)
        buf = self.buffers.pop(key, None)
        if buf is None:
            buf = like.new_empty(shape)
            while len(self.buffers) >= self.limit:
                self.buffers.pop(next(iter(self.buffers)))
        self.buffers[key] = buf  # most recently used last
        return buf


_WORKSPACE = _Workspace()


def scratch(kind: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """A reused per-thread scratch tensor (uninitialised) for results consumed at once:
    never return it or save it for backward."""
    return _WORKSPACE.get(shape, like, kind)


def apply(w: Tensor, coef: Tensor, rows: Rows) -> Tensor:
    """``A``: weights ``w (N, n)``, ``coef (R, out)`` -> ``(N, out)``."""
    return F.embedding_bag(rows.idx(), coef.contiguous(), per_sample_weights=w.reshape(rows.shape), mode="sum")


def dot(g: Tensor, coef: Tensor, rows: Rows, out: Tensor | None = None) -> Tensor:
    """``D``: ``g (N, out)``, ``coef (R, out)`` -> ``(N, n)`` with ``g[b] . coef[idx[b, n]]``
    (written into ``out``, ``N * n`` elements, when given)."""
    full = _WORKSPACE.get((rows.n_points, rows.n_rows), g)
    torch.mm(g, coef.T.contiguous(), out=full)  # (N, R)
    if out is None:
        return full.view(-1).index_select(0, rows.flat()).view(rows.shape)
    return torch.index_select(full.view(-1), 0, rows.flat(), out=out.view(-1)).view(rows.shape)


def outer(w: Tensor, g: Tensor, rows: Rows) -> Tensor:
    """``S``: ``w (N, n)``, ``g (N, out)`` -> ``(R, out)``, the transpose of ``A`` in ``coef``."""
    dense = _WORKSPACE.get((rows.n_points, rows.n_rows), w).zero_()
    dense.view(-1).index_add_(0, rows.flat(), w.reshape(-1))  # (N, R): the dense basis
    return (g.T @ dense).T  # = dense^T g, a transposed view of an (out, R) matrix
