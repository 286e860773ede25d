"""Fast paths of the local B-spline contraction: row table without a zero row, the fused
uniform-grid route, closed-form polynomials, the uniform-grid cache and int64 fallback."""

from __future__ import annotations

import pytest
import torch

from physkan.kan import local_kernels
from physkan.kan.basis import bspline_basis
from physkan.kan.layer import KANLayer
from physkan.kan.local_basis import derivative, poly_rows, uniform_bspline_matrix, uniform_grid
from physkan.kan.local_kernels import apply, dot, local_rows, outer
from physkan.kan.local_spline import _composable, local_spline_contract

F64 = torch.float64


def _setup(n: int = 200, n_in: int = 5, n_out: int = 3, grid: int = 7, k: int = 3, spread: float = 1.8):
    layer = KANLayer(n_in, n_out, grid_size=grid, k=k, generator=torch.Generator().manual_seed(0)).double()
    ends = torch.ones(n_in, dtype=F64)
    layer.grid = layer.basis.make_grid(-ends, ends, grid, k)  # uniform in float64 (not cast from float32)
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(n, n_in, generator=gen, dtype=F64) * 2 - 1) * spread
    coef = torch.randn(n_in * layer.n_basis, n_out, generator=gen, dtype=F64)
    return layer, x, coef


def test_row_table_has_no_zero_row_and_flags_exactly_the_missing_functions() -> None:
    n_basis, k = 9, 3
    span = torch.tensor([[-1, 0, 2, 3], [5, 8, 9, 12]])  # sentinel, padded ends, interior
    rows = local_rows(span, n_basis, k)
    idx = rows.idx().clone()
    assert rows.n_rows == 4 * n_basis and int(idx.max()) < rows.n_rows and int(idx.min()) >= 0
    j = span[:, None, :] - k + torch.arange(k + 1)[None, :, None]  # (N, k+1, in)
    assert torch.equal(rows.valid, (j >= 0) & (j < n_basis))
    blocks = (torch.arange(4) * n_basis)[None, None, :]
    ok = rows.valid
    assert torch.equal(idx.view(j.shape)[ok].long(), (j + blocks)[ok])
    points = torch.arange(2)[:, None, None]
    assert torch.equal(rows.flat().view(j.shape).long(), idx.view(j.shape).long() + points * rows.n_rows)


def test_interior_spans_need_no_mask_and_int64_fallback_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    span = torch.randint(3, 9, (50, 4), generator=torch.Generator().manual_seed(2))
    rows = local_rows(span, 9, 3)
    assert rows.valid is None and rows.full is None and rows.base.dtype == torch.int32
    idx, flat = rows.idx().clone(), rows.flat().clone()  # (scratch: copy before the next call)
    j = span[:, None, :] - 3 + torch.arange(4)[None, :, None] + (torch.arange(4) * 9)[None, None, :]
    assert torch.equal(idx.view(j.shape).long(), j)
    monkeypatch.setattr(local_kernels, "_INT32_MAX", 10)  # as if N * R overflowed int32
    wide = local_rows(span.double(), 9, 3)
    assert wide.base.dtype == torch.int64 and torch.equal(wide.idx(), idx.long())
    assert torch.equal(wide.flat(), flat.long())


@pytest.mark.parametrize(("int64", "interior"), [(False, False), (True, False), (False, True)])
def test_kernels_match_the_dense_products(int64: bool, interior: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if int64:
        monkeypatch.setattr(local_kernels, "_INT32_MAX", 10)
    gen = torch.Generator().manual_seed(4)
    n_pts, n_in, n_basis, k, n_out = 30, 3, 8, 2, 4
    low, high = (k, n_basis) if interior else (-1, n_basis + k + 1)
    span = torch.randint(low, high, (n_pts, n_in), generator=gen)
    rows = local_rows(span, n_basis, k)
    assert (rows.valid is None) == interior
    w = torch.randn(n_pts, k + 1, n_in, dtype=F64, generator=gen) * (1 if interior else rows.valid)
    coef = torch.randn(rows.n_rows, n_out, dtype=F64, generator=gen)
    g = torch.randn(n_pts, n_out, dtype=F64, generator=gen)
    dense = torch.zeros(n_pts, rows.n_rows, dtype=F64)
    dense.scatter_add_(1, rows.idx().long(), w.reshape(n_pts, -1))  # the basis, built directly
    assert torch.allclose(apply(w, coef, rows), dense @ coef, atol=1e-12, rtol=0)
    assert torch.allclose(outer(w, g, rows), dense.T @ g, atol=1e-12, rtol=0)
    assert torch.allclose(dot(g, coef, rows), (g @ coef.T).gather(1, rows.idx().long()), atol=1e-12, rtol=0)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_poly_rows_and_derivative_match_the_basis_and_autograd(k: int) -> None:
    grid = torch.linspace(-2, 2, 12, dtype=F64)[None, :]
    x = torch.linspace(-0.5, 0.5, 97, dtype=F64)[:, None].requires_grad_()  # every function exists
    m = uniform_bspline_matrix(k)
    u = (x - grid[:, 0]) / (grid[:, 1] - grid[:, 0])
    span = torch.floor(u.detach())
    f = (u - span).detach()
    values = poly_rows(f, m)  # (N, k+1, 1)
    dense = bspline_basis(x, grid, k)[:, 0, :]
    cols = span.long()[:, 0, None] - k + torch.arange(k + 1)
    assert torch.allclose(values[:, :, 0], dense.gather(1, cols), atol=1e-13, rtol=0)
    slope = poly_rows(f, derivative(m))[:, :, 0] / (grid[0, 1] - grid[0, 0])
    for r in range(k + 1):
        (grad,) = torch.autograd.grad(dense.gather(1, cols)[:, r].sum(), x, retain_graph=True)
        assert torch.allclose(slope[:, r], grad[:, 0], atol=1e-11, rtol=0)


def test_fused_route_equals_composable_route_to_1e_12() -> None:
    layer, x, coef = _setup()
    results = []
    for fn in (local_spline_contract, _composable):  # fused (uniform grid) / composable
        xx, cc = x.clone().requires_grad_(), coef.clone().requires_grad_()
        y = fn(xx, layer.grid, layer.k, cc)
        gx, gc = torch.autograd.grad(y.sin().sum(), (xx, cc))
        results.append((y, gx, gc))
    assert type(local_spline_contract(x.requires_grad_(), layer.grid, 3, coef).grad_fn).__name__ == "UniformSplineBackward"
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-12, rtol=1e-12)


def test_fused_route_in_float32_is_close_to_float64() -> None:
    layer, x, coef = _setup()
    y64 = local_spline_contract(x, layer.grid, layer.k, coef)
    x32, c32 = x.float().requires_grad_(), coef.float()
    y32 = local_spline_contract(x32, layer.grid.float(), layer.k, c32)
    assert y32.dtype == torch.float32 and torch.allclose(y32.double(), y64, atol=1e-5, rtol=0)
    (g32,) = torch.autograd.grad(y32.sum(), x32)
    xx = x.clone().requires_grad_()
    (g64,) = torch.autograd.grad(local_spline_contract(xx, layer.grid, layer.k, coef).sum(), xx)
    assert torch.allclose(g32.double(), g64, atol=1e-4, rtol=0)


def test_uniform_grid_cache_follows_grid_updates() -> None:
    grid = torch.linspace(-1, 1, 11, dtype=F64).repeat(2, 1)
    t0, h = uniform_grid(grid)
    assert torch.allclose(t0, grid[:, 0]) and torch.allclose(h, grid[:, 1] - grid[:, 0])
    grid[1, 3] += 0.05  # in place: the version changes, the cache must notice
    assert uniform_grid(grid) is None
    grid[1, 3] -= 0.05
    assert uniform_grid(grid) is not None
    layer = KANLayer(2, 2, grid_size=6, grid_eps=1.0).double()
    layer.update_grid(torch.rand(300, 2, dtype=F64) ** 3)  # grid_eps = 1: stays uniform
    assert uniform_grid(layer.grid) is not None
    layer.grid_eps = 0.0
    layer.update_grid(torch.rand(300, 2, dtype=F64) ** 3)  # quantile knots: general route
    assert uniform_grid(layer.grid) is None


def test_empty_batch_on_the_local_path() -> None:
    layer = KANLayer(4, 3, grid_size=6, spline_path="local")
    x = torch.zeros(0, 4, requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert y.shape == (0, 3) and x.grad.shape == (0, 4) and float(layer.coef.grad.abs().sum()) == 0.0
