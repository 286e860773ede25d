"""Local-support B-spline path of KANLayer: same numbers as the dense basis, any-order autograd."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from physkan.kan.basis import bspline_basis
from physkan.kan.layer import KANLayer
from physkan.kan.local_basis import bspline_local, uniform_bspline_matrix
from physkan.kan.local_kernels import Rows
from physkan.kan.local_spline import (
    MIN_LOCAL_WORK,
    _Apply,
    _Dot,
    _Outer,
    local_spline_contract,
    prefer_local,
)

F64 = torch.float64


def _layer(in_dim: int, out_dim: int, grid: int, k: int, seed: int = 0, **kw) -> KANLayer:
    layer = KANLayer(in_dim, out_dim, grid_size=grid, k=k, generator=torch.Generator().manual_seed(seed), **kw)
    return layer.double()


def _both(layer: KANLayer, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    layer.spline_path = "dense"
    dense = layer(x)
    layer.spline_path = "local"
    return dense, layer(x)


def _points(n: int, d: int, dtype: torch.dtype = F64, seed: int = 1) -> torch.Tensor:
    """Points covering the grid, its padded ends and beyond (where the basis is zero)."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(n, d, generator=gen, dtype=dtype) * 3.6 - 1.8).contiguous()


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_uniform_matrix_reproduces_the_de_boor_values(k: int) -> None:
    grid = torch.linspace(-2, 2, 12, dtype=F64)[None, :]
    x = torch.linspace(-1.99, 1.99, 301, dtype=F64)[:, None]
    span, values = bspline_local(x, grid, k)
    dense = bspline_basis(x, grid, k)[:, 0, :]  # (N, nb)
    for r in range(k + 1):
        j = span[:, 0] - k + r
        ok = (j >= 0) & (j < dense.shape[1]) & (span[:, 0] < grid.shape[1] - 1)
        picked = dense[ok.nonzero()[:, 0], j[ok]]
        assert torch.allclose(values[ok, r, 0], picked, atol=1e-13, rtol=0)
    assert len(uniform_bspline_matrix(k)) == k + 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("grid", "k"), [(3, 3), (10, 3), (7, 2), (12, 1)])
def test_local_equals_dense_forward(dtype: torch.dtype, grid: int, k: int) -> None:
    layer = _layer(5, 4, grid, k).to(dtype)
    dense, local = _both(layer, _points(300, 5, dtype))
    tol = 1e-12 if dtype == F64 else 1e-5
    assert torch.allclose(dense, local, atol=tol, rtol=0)


def test_local_equals_dense_on_nonuniform_grid() -> None:
    layer = _layer(3, 2, 8, 3, grid_eps=0.0)
    layer.update_grid(torch.rand(500, 3, dtype=F64) ** 3 * 2 - 1)
    dense, local = _both(layer, _points(200, 3))
    assert torch.allclose(dense, local, atol=1e-12, rtol=0)


def test_gradients_and_hessians_match_dense_to_1e_12() -> None:
    layer = _layer(3, 2, 10, 3)
    x = _points(64, 3).requires_grad_()
    results = []
    for path in ("dense", "local"):
        layer.spline_path = path
        y = layer(x)
        (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
        hess = torch.stack([torch.autograd.grad(gx[:, i].sum(), x, retain_graph=True)[0]
                            for i in range(3)])  # fmt: skip
        (gcoef,) = torch.autograd.grad(gx.square().sum(), layer.coef)
        results.append((y, gx, hess, gcoef))
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-12, rtol=1e-12)


def test_layer_gradcheck_and_gradgradcheck_in_x_and_coef() -> None:
    layer = _layer(2, 3, 6, 3, spline_path="local")
    x = (_points(9, 2) * 0.8).requires_grad_()
    coef = layer.coef.detach().clone().requires_grad_()

    def f(x: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
        w = (coef * layer.scale_sp.detach().unsqueeze(1)).reshape(-1, layer.out_dim)
        return local_spline_contract(x, layer.grid, layer.k, w)

    assert gradcheck(f, (x, coef))
    assert gradgradcheck(f, (x, coef))


@pytest.mark.parametrize("op", ["apply", "dot", "outer"])
def test_kernels_gradgradcheck(op: str) -> None:
    gen = torch.Generator().manual_seed(3)
    idx = torch.randint(0, 7, (5, 6), generator=gen)
    rows = Rows(7, 0, full=idx)
    a = torch.randn(5, 6, dtype=F64, generator=gen, requires_grad=True)
    b = torch.randn(7, 3, dtype=F64, generator=gen, requires_grad=True)
    g = torch.randn(5, 3, dtype=F64, generator=gen, requires_grad=True)
    fn, args = {
        "apply": (lambda w, c: _Apply.apply(w, c, rows), (a, b)),
        "dot": (lambda g, c: _Dot.apply(g, c, rows), (g, b)),
        "outer": (lambda w, g: _Outer.apply(w, g, rows), (a, g)),
    }[op]
    assert gradcheck(fn, args)
    assert gradgradcheck(fn, args)


def test_masks_and_symbolic_edges_are_respected() -> None:
    import physkan.symbolic  # noqa: F401  (installs the symbolic resolver)

    layer = _layer(3, 3, 10, 3)
    layer.mask[1, 0] = 0
    layer.symbolic_mask[2, 1] = 1
    layer.symbolic_names[2][1] = "sin"
    x = _points(100, 3)
    dense, local = _both(layer, x)
    assert torch.allclose(dense, local, atol=1e-12, rtol=0)
    assert torch.allclose(local, layer.edge_activations(x).sum(1), atol=1e-12, rtol=0)


def test_grid_update_and_refine_keep_the_local_path_exact() -> None:
    layer = _layer(2, 2, 5, 3, spline_path="local")
    x = torch.rand(400, 2, dtype=F64) * 1.6 - 0.8
    layer.update_grid(x)
    before = layer(x)
    layer.refine(20)  # nested uniform grids: the function is kept exactly
    layer.spline_path = "local"
    assert torch.allclose(before, layer(x), atol=1e-9, rtol=0)
    dense, local = _both(layer, x)
    assert torch.allclose(dense, local, atol=1e-12, rtol=0)


def test_auto_path_selection_rule() -> None:
    wide = _layer(64, 64, 10, 3)
    assert wide.uses_local_path(1024)
    assert not wide.uses_local_path(MIN_LOCAL_WORK // (64 * 64) - 1)  # small batch: dense
    assert not _layer(2, 5, 10, 3).uses_local_path(1000)  # discovery-sized layers: dense
    assert not _layer(64, 64, 1, 3).uses_local_path(1024)  # G = 1: nothing to skip
    assert _layer(64, 64, 3, 3).uses_local_path(1024)
    assert not _layer(64, 64, 10, 3, basis="rbf").uses_local_path(1024)
    assert prefer_local(1024, 64, 64, 13, 3) and not prefer_local(1024, 64, 64, 4, 3)


def test_bad_spline_path_names_the_field() -> None:
    with pytest.raises(ValueError, match="spline_path"):
        KANLayer(2, 2, spline_path="sparse")
    with pytest.raises(ValueError, match="spline_path"):
        KANLayer(2, 2, basis="rbf", spline_path="local")


def test_wide_layer_auto_path_matches_dense_and_results_do_not_share_scratch() -> None:
    layer = _layer(64, 16, 10, 3)
    x = _points(512, 64).requires_grad_()
    assert layer.uses_local_path(512)  # auto picks the local path at this size
    grads = []
    for path in ("auto", "dense", "auto"):  # the scratch matrices are reused by the 3rd call
        layer.spline_path = path
        y = layer(x)
        grads.append((y.detach(), *torch.autograd.grad(y.square().sum(), (x, layer.coef))))
    for a, b in zip(grads[0], grads[1]):
        assert torch.allclose(a, b, atol=1e-12, rtol=1e-12)
    for a, b in zip(grads[0], grads[2]):
        assert torch.equal(a, b)  # earlier results were not overwritten through a scratch buffer
