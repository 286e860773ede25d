"""Fused first-order route of the local B-spline contraction on a uniform grid.

On a grid ``t0 + h * j`` the ``k + 1`` functions that are non-zero at ``x`` are polynomials
in the offset ``f = u - floor(u)``, ``u = (x - t0) / h``: ``values = [1, f, .., f^k] M``
(:func:`~physkan.kan.local_basis.uniform_bspline_matrix`). One autograd node does the
spline and base branches of a layer with few, large kernels, in the layout
``(N, in, k+1)`` (the ``k + 1`` values of one input are adjacent):

* forward: ``u``, its span and offset, the powers ``(k+1, N*in)`` and one small GEMM for the
  local values ``(N*in, k+1)``; the dense basis ``B (N, R + in)`` (last ``in`` columns: the
  base values) is zeroed and the values are copied in as *windows*: the ``k + 1`` functions
  of input ``i`` are the adjacent columns ``i * nb + span - k + r``, so one ``index_copy_``
  of ``N * in`` rows of ``k + 1`` into the overlapping window view of ``B`` places them, with
  one int64 start per point and input (no ``(N, (k+1) * in)`` row table); then one GEMM
  ``B [C; W_base]``;
* backward (first order): ``d[C; W_base] = B^T g`` (one GEMM on the saved basis); ``dx`` from
  one GEMM ``g [C; W_base]^T``, one ``index_select`` of the same windows, one small GEMM with
  the derivative polynomials' coefficients and a Horner step in ``f`` (the base columns give
  the base values' gradient).

Where the compiled kernels of :mod:`physkan.kan.native` load (a C compiler on the machine;
CPU, float32 / float64), the first-order route skips the dense basis altogether: the
forward and ``dC`` accumulate the ``k + 1`` active rows per point and input straight from
the local values (``(G+k)/(k+1)`` times fewer multiply-adds than the GEMMs), ``dx`` is one
GEMM ``g C^T`` and a compiled gather of the windows, and the base branch is its own small
GEMM. The PyTorch route below gives the same numbers (to rounding) everywhere else.

Windows never overlap one another (one per point and input, inside its input's block), so
the copy is exact and deterministic. A point whose ``k + 1`` functions are not all in the
basis (ends of the knot vector, points outside it) gets its window moved inside the block and
its values shifted to match, zeros for the missing functions (the backward shifts back).
Non-finite inputs give NaN outputs (never an out-of-range row). Large tensors saved for
backward come from :mod:`physkan.kan.buffer_pool` (no page faults in steady-state training).
A backward that must itself be differentiable (``create_graph=True``: Hessians of physics
losses) differentiates the composable route given as ``composable``, so derivatives of any
order stay exact.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.autograd import Function

from physkan.kan import native
from physkan.kan.buffer_pool import reusable
from physkan.kan.local_basis import derivative, uniform_bspline_matrix
from physkan.kan.local_kernels import scratch

__all__ = ["LocalTable", "UniformSpline", "uniform_local_table"]


#: Window starts are computed in floating point (cheaper kernels than int64) while exact:
#: below ``2**24`` in float32 (also for half-precision inputs); float64 otherwise.
_EXACT_FLOAT32 = 2**24


@dataclass
class LocalTable:
    """Where the local values of ``x (N, in)`` go in the dense basis ``(N, width)``.

    Attributes:
        f: ``(N, in)`` offsets in the knot interval.
        values: ``(N * in, k+1)`` window values, layout ``(N, in, k+1)``: entry ``q`` of
            point ``b``'s and input ``i``'s window is function ``c + q`` of input ``i``.
        starts: ``(N * in,)`` int64 flat position ``b * width + i * nb + c`` of each window.
        moved: ``(m,)`` int64 rows whose window was moved into its block (a function of the
            point's span is missing: ends of the knot vector, points outside it).
        shift: ``(m,)`` int64 ``span - k - c`` of those rows: entry ``q`` is local function
            ``q - shift`` (zero where that is not in ``0..k``).
    """

    f: Tensor
    values: Tensor
    starts: Tensor
    moved: Tensor | None = None
    shift: Tensor | None = None


def _shifted(rows: Tensor, by: Tensor, k: int) -> Tensor:
    """``out[:, q] = rows[:, q + by]`` where ``0 <= q + by <= k``, else 0; ``rows (m, k+1)``,
    ``by (m,)`` int64 in ``[-k-1, k+1]``. Rows with a non-finite entry stay non-finite."""
    padded = torch.nn.functional.pad(rows, (k + 1, k + 1))
    src = torch.arange(k + 1, device=rows.device) + (k + 1) + by[:, None]
    return padded.gather(1, src).add_(rows.sum(1, keepdim=True).mul_(0))


@functools.lru_cache(maxsize=32)
def _constants(
    n_pts: int, n_in: int, n_basis: int, width: int, k: int, dtype: torch.dtype, exact: torch.dtype,
    device: torch.device,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Read-only constants of one shape: window starts ``b * width + i * nb - k (N, in)``
    (``exact`` dtype) and ``M^T (k+1, k+1)`` (``dtype``)."""
    rows = torch.arange(n_pts, dtype=torch.float64, device=device)[:, None] * width
    starts = (rows + (torch.arange(n_in, dtype=torch.float64, device=device) * n_basis - k)).to(exact)
    m_t = torch.tensor(uniform_bspline_matrix(k), dtype=torch.float64).T.contiguous()
    return starts, m_t.to(dtype=dtype, device=device)


def _windows(t: Tensor, k: int) -> Tensor:
    """``(numel - k, k+1)`` overlapping view of a contiguous ``t``: row ``p`` is
    ``t.flatten()[p : p + k + 1]``."""
    return t.view(-1).as_strided((max(t.numel() - k, 0), k + 1), (1, 1))


#: ``index_copy_`` into the overlapping window view (torch allows writes whose overlap it
#: cannot rule out); set to False, once, if a torch build refuses: then the explicit route.
_WINDOW_WRITES = [True]


def uniform_local_table(x: Tensor, t0: Tensor, h: Tensor, n_basis: int, k: int, width: int) -> LocalTable:
    """Offsets, local values and their places in the dense basis for ``x (N, in)``.

    Args:
        x: points ``(N, in)``; t0, h: first knot and spacing per input ``(in,)``.
        n_basis: functions per input (``M - 1 - k`` for ``M`` knots); k: spline order.
        width: columns of the dense basis (``in * n_basis``, plus ``in`` with a base branch).
    """
    n_pts, n_in = x.shape
    wide = x.dtype == torch.float64 or n_pts * width >= _EXACT_FLOAT32
    exact = torch.float64 if wide else torch.float32
    starts, m_t = _constants(n_pts, n_in, n_basis, width, k, x.dtype, exact, x.device)
    u = torch.sub(x, t0, out=scratch("u", (n_pts, n_in), x)).div_(h)
    span = torch.floor(u)
    lo, hi = (float(v) for v in torch.aminmax(span)) if span.numel() else (k, k)
    powers = reusable("powers", (k + 1, n_pts * n_in), x.dtype, x.device)  # rows 1, f, f^2, ..
    powers[0].fill_(1.0)
    f = torch.sub(u, span, out=powers[1].view(n_pts, n_in))
    for p in range(2, k + 1):
        torch.mul(powers[p - 1], powers[1], out=powers[p])
    values = torch.mm(powers.T, m_t, out=reusable("values", (n_pts * n_in, k + 1), x.dtype, x.device))
    first = reusable("starts", (n_pts * n_in,), torch.long, x.device)
    span = span.to(exact)
    if lo >= k and hi <= n_basis - 1:  # every window inside its block
        return LocalTable(f, values, first.copy_(span.add_(starts).view(-1)))
    if not (math.isfinite(lo) and math.isfinite(hi)):  # NaN / inf: NaN values (never a bad row)
        span = torch.nan_to_num(span, nan=-1.0, posinf=-1.0, neginf=-1.0)
    lead = span.clamp_(-1, n_basis + k).sub_(k)  # first local function of each point
    inside = lead.clamp(0, n_basis - 1 - k)  # the window start kept inside the block
    shift = lead.sub_(inside).view(-1)
    moved = shift.nonzero().squeeze(1)
    shift = shift[moved].long()
    values[moved] = _shifted(values[moved], -shift, k)
    return LocalTable(f, values, first.copy_(inside.add_(starts).add_(k).view(-1)), moved, shift)


def _place(basis: Tensor, table: LocalTable, k: int) -> Tensor | None:
    """Write ``table.values`` into the zeroed ``basis`` ``(N, width)``. Returns ``None``, or
    the columns ``(N, in*(k+1))`` it scattered to where this torch refuses window writes."""
    if _WINDOW_WRITES[0]:
        try:
            _windows(basis, k).index_copy_(0, table.starts, table.values)
            return None
        except RuntimeError as err:  # overlap check of a future torch: explicit route from now on
            if "memory location" not in str(err) and "overlap" not in str(err):
                raise
            _WINDOW_WRITES[0] = False
    cols = (table.starts % basis.shape[1]).view(-1, 1) + torch.arange(k + 1, device=basis.device)
    cols = cols.view(basis.shape[0], -1)
    basis.scatter_add_(1, cols, table.values.view(cols.shape))
    return cols


def _local_rows(full: Tensor, table: tuple[Tensor | None, ...], k: int) -> Tensor:
    """``(N * in, k+1)``: ``d[b*in + i, r] = full[b, column of local function r]`` (0 where it
    does not exist) for ``table = (starts, moved, shift, cols)`` of a :class:`LocalTable`."""
    starts, moved, shift, cols = table
    if cols is None:
        d = _windows(full, k).index_select(0, starts)
    else:
        d = full.gather(1, cols).view(-1, k + 1)
    if moved is not None and moved.numel():
        d[moved] = _shifted(d[moved], shift, k)
    return d


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
        folded = base is not None
        ctx.k, ctx.composable = k, composable
        if n_rows >= n_in * (k + 1) and native.available(x, coef, t0, h, k=k):  # compiled: no basis
            y = native.spline_forward(x, t0, h, n_rows // n_in, k, _poly_matrix(k, x.dtype), coef)
            if folded:
                y.addmm_(base, w_base)
            ctx.save_for_backward(x, coef, base, w_base, t0, h)
            ctx.native = True
            return y
        ctx.native = False
        width = n_rows + (n_in if folded else 0)
        table = uniform_local_table(x, t0, h, n_rows // n_in, k, width)
        basis = reusable("basis", (n_pts, width), x.dtype, x.device).zero_()  # (N, R [+ in])
        cols = _place(basis, table, k)
        both = coef
        if folded:
            basis[:, n_rows:] = base
            both = torch.cat([coef, w_base])
        ctx.save_for_backward(x, coef, base, w_base, both, h, basis, table.f, table.starts, table.moved, table.shift, cols)
        return basis @ both

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        if torch.is_grad_enabled():  # create_graph: differentiate the composable route
            x, coef, base, w_base = ctx.saved_tensors[:4]
            grads = _graph_grads(ctx.composable, g, (x, coef, base, w_base), ctx.needs_input_grad[:4])
            return (*grads, None, None, None, None)
        if ctx.native:
            return (*_native_grads(ctx, g), None, None, None, None)
        x, coef, base, w_base, both, h, basis, f, *table = ctx.saved_tensors
        n_rows, k = coef.shape[0], ctx.k
        need_x, need_c, need_b, need_w = ctx.needs_input_grad[:4]
        gx = gc = gb = gw = None
        if need_c or need_w:
            g_all = (g.T @ basis).T  # = basis^T g, a transposed view of an (out, R [+ in]) matrix
            gc, gw = g_all[:n_rows], (g_all[n_rows:] if base is not None else None)
        if need_x or need_b:
            full = scratch("rows", (g.shape[0], both.shape[0]), g)  # consumed at once below
            torch.mm(g, both.T, out=full)
            if need_x:
                gx = _input_grad(_local_rows(full, tuple(table), k), f, h, k)
            if need_b:
                gb = full[:, n_rows:].clone()
        return gx, gc, gb, gw, None, None, None, None


def _native_grads(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
    """First-order gradients in ``x, coef, base, w_base`` from the compiled kernels."""
    x, coef, base, w_base, t0, h = ctx.saved_tensors
    need_x, need_c, need_b, need_w = ctx.needs_input_grad[:4]
    k, n_basis = ctx.k, coef.shape[0] // x.shape[1]
    gx = gc = gb = gw = None
    if need_x:  # the products g . C at every row: one GEMM (as the dense basis's dx needs)
        full = torch.mm(g, coef.T, out=scratch("rows", (g.shape[0], coef.shape[0]), g))
        gx = native.spline_input_grad(x, t0, h, n_basis, k, _slope_matrix(k, x.dtype, x.device), full)
    if need_c:
        gc = native.spline_coef_grad(x, t0, h, n_basis, k, _poly_matrix(k, x.dtype), g)
    if need_b:
        gb = g @ w_base.T
    if need_w:
        gw = base.T @ g
    return gx, gc, gb, gw


@functools.lru_cache(maxsize=16)
def _poly_matrix(k: int, dtype: torch.dtype) -> Tensor:
    """``(k+1, k+1)``: ``values_r(f) = sum_p M[r, p] f^p`` on the CPU (read-only)."""
    return torch.tensor(uniform_bspline_matrix(k), dtype=torch.float64).to(dtype=dtype).contiguous()


def _input_grad(d: Tensor, f: Tensor, h: Tensor, k: int) -> Tensor:
    """``dx (N, in)`` from ``d (N*in, k+1)`` (``g . C`` at each local function): ``sum_r d_r
    values_r'(f) / h``, as ``e = d D`` (``D (k+1, k)``: the derivative polynomials'
    coefficients, so ``e[:, p]`` multiplies ``f^p``) and Horner's rule in ``f``."""
    e = d @ _slope_matrix(k, d.dtype, d.device)  # (N*in, k)
    n_pts, n_in = f.shape
    acc = e[:, k - 1].view(n_pts, n_in)
    for p in range(k - 2, -1, -1):
        acc = torch.addcmul(e[:, p].view(n_pts, n_in), acc, f)
    return acc.div_(h) if k > 1 else acc / h


@functools.lru_cache(maxsize=16)
def _slope_matrix(k: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``(k+1, k)``: ``values_r'(f) = sum_p D[r, p] f^p`` (read-only)."""
    return torch.tensor(derivative(uniform_bspline_matrix(k)), dtype=torch.float64).to(dtype=dtype, device=device)


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
