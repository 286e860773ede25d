"""Fused uniform-grid route with the base branch folded into its GEMMs; buffer reuse across
steps; cached mask / affine state. Same numbers as the dense basis to 1e-12 in float64."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from physkan.kan.basis import bspline_basis
from physkan.kan.buffer_pool import reusable
from physkan.kan.layer import KANLayer
from physkan.kan.local_spline import local_spline_contract
from physkan.kan.network import MultKAN

F64 = torch.float64


def _case(n: int = 40, n_in: int = 3, n_out: int = 2, grid: int = 6, k: int = 3, spread: float = 1.8):
    """Uniform float64 grid on [-1, 1]; points on the grid, its padded ends and beyond."""
    ends = torch.ones(n_in, dtype=F64)
    knots = KANLayer(1, 1).basis.make_grid(-ends, ends, grid, k)
    gen = torch.Generator().manual_seed(5)
    x = (torch.rand(n, n_in, generator=gen, dtype=F64) * 2 - 1) * spread
    coef = torch.randn(n_in * (grid + k), n_out, generator=gen, dtype=F64)
    w_base = torch.randn(n_in, n_out, generator=gen, dtype=F64)
    return knots, k, x, coef, w_base


def _reference(x, knots, k, coef, w_base):
    return bspline_basis(x, knots, k).reshape(x.shape[0], -1) @ coef + torch.nn.functional.silu(x) @ w_base


def test_folded_base_equals_dense_with_all_gradients_to_1e_12() -> None:
    for spread in (0.9, 1.8):  # every function exists / ends and outside points (masked rows)
        knots, k, x, coef, w_base = _case(spread=spread)
        _assert_fused_equals_dense(knots, k, x, coef, w_base)
        assert type(local_spline_contract(x.requires_grad_(), knots, k, coef, x, w_base).grad_fn).__name__ == "UniformSplineBackward"


def _assert_fused_equals_dense(knots, k, x, coef, w_base) -> None:
    """Output and the gradients in ``x``, ``coef``, ``w_base`` of the fused route (silu base
    folded in) equal the dense basis matmul's to 1e-12 (float64)."""
    results = []
    for fused in (True, False):
        args = [t.clone().requires_grad_() for t in (x, coef, w_base)]
        xx, cc, ww = args
        y = local_spline_contract(xx, knots, k, cc, torch.nn.functional.silu(xx), ww) if fused else \
            _reference(xx, knots, k, cc, ww)  # fmt: skip
        results.append((y, *torch.autograd.grad(y.sin().sum(), args)))
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-12, rtol=1e-12)


def test_folded_base_gradcheck_and_gradgradcheck() -> None:
    knots, k, x, coef, w_base = _case(n=7, n_in=2, n_out=2, grid=4, spread=1.2)
    base = torch.randn(7, 2, dtype=F64, generator=torch.Generator().manual_seed(6))
    inputs = [t.clone().requires_grad_() for t in (x, coef, base, w_base)]

    def f(x, coef, base, w_base):
        return local_spline_contract(x, knots, k, coef, base, w_base)

    assert gradcheck(f, inputs)
    assert gradgradcheck(f, inputs)  # create_graph: Hessians reach every input


def test_non_finite_inputs_give_nan_rows_not_a_crash() -> None:
    knots, k, x, coef, w_base = _case()
    x = x.clone()
    x[3, 0], x[5, 1], x[7, 2] = float("nan"), float("inf"), -float("inf")
    y = local_spline_contract(x.requires_grad_(), knots, k, coef)
    bad = torch.zeros(x.shape[0], dtype=torch.bool)
    bad[[3, 5, 7]] = True
    assert torch.isnan(y[bad]).all()
    ref = bspline_basis(x.detach()[~bad], knots, k).reshape(-1, coef.shape[0]) @ coef
    assert torch.allclose(y[~bad], ref, atol=1e-12, rtol=0)
    y[~bad].sum().backward()  # runs, and the finite rows' gradients are finite
    assert torch.isfinite(x.grad[~bad]).all()


def test_saved_buffers_are_never_shared_between_live_graphs() -> None:
    knots, k, x, coef, w_base = _case(n=64)
    xs = [x, x.flip(0) * 0.5]
    refs = []
    for xi in xs:
        xi = xi.clone().requires_grad_()
        refs.append(torch.autograd.grad(_reference(xi, knots, k, coef, w_base).square().sum(), xi)[0])
    live = [xi.clone().requires_grad_() for xi in xs]
    ys = [local_spline_contract(xi, knots, k, coef, torch.nn.functional.silu(xi), w_base) for xi in live]
    for xi, yi, ref in reversed(list(zip(live, ys, refs))):  # both graphs alive: two buffers
        (gx,) = torch.autograd.grad(yi.square().sum(), xi)
        assert torch.allclose(gx, ref, atol=1e-12, rtol=0)
    held = reusable("test", (4, 4), F64, x.device)
    alias = reusable("test", (4, 4), F64, x.device).detach()  # only an alias of the storage left
    assert reusable("test", (4, 4), F64, x.device).data_ptr() not in (held.data_ptr(), alias.data_ptr())
    ptrs = {held.data_ptr(), alias.data_ptr()}
    del held, alias
    assert reusable("test", (4, 4), F64, x.device).data_ptr() in ptrs  # steady state: reused


def test_mask_and_affine_edits_take_effect_at_once() -> None:
    """Guards against caching state derived from masks or affines: writes through ``.data``
    (as :mod:`physkan.symbolic.compile` does) do not bump a tensor's version."""
    layer = KANLayer(3, 2, grid_size=5).double()
    assert not layer.has_symbolic
    layer.symbolic_mask[1, 0] = 1.0  # in place: the cached state must notice
    assert layer.has_symbolic
    twin = copy.deepcopy(layer)
    twin.symbolic_mask.zero_()
    assert layer.has_symbolic and not twin.has_symbolic
    layer.mask[1, 0] = 0.0  # the symbolic edge is masked off: no longer active
    assert not layer.has_symbolic

    model = MultKAN([2, 3, 1], grid=5, seed=0).double()
    x = torch.rand(20, 2, dtype=F64)
    before = model(x)
    model.node_scale[1].data.fill_(2.0)
    model.node_bias[1].data[0] = 0.5
    assert torch.allclose(model(x), 2.0 * before + 0.5, atol=1e-12, rtol=0)
    layer.symbolic_mask.data[2, 1] = 1.0
    assert layer.has_symbolic


def test_pool_keeps_no_more_than_its_byte_budget(monkeypatch) -> None:
    from physkan.kan import buffer_pool

    monkeypatch.setattr(buffer_pool, "POOL_MAX_BYTES", 0)  # nothing new fits
    big = reusable("cap", (4, 4), F64, torch.device("cpu"))
    assert big.shape == (4, 4)
    assert not any(b is big for bufs in buffer_pool._POOL.buffers.values() for b in bufs)


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("windows", [True, False])
def test_moved_windows_and_explicit_route_equal_dense_to_1e_12(k: int, windows: bool, monkeypatch) -> None:
    """Points past both padded ends and far outside the grid (windows moved into their block,
    values shifted both ways), for every order's Horner step; the explicit ``scatter_add_`` /
    ``gather`` route (a torch that refuses window writes) gives the same numbers."""
    from physkan.kan import local_fused

    monkeypatch.setattr(local_fused, "_WINDOW_WRITES", [windows])
    knots, k, x, coef, w_base = _case(n=60, grid=5, k=k, spread=3.0)
    x = torch.cat([x, knots[:, :1].T, knots[:, -1:].T - 1e-9])  # the first knot, just inside the last
    _assert_fused_equals_dense(knots, k, x, coef, w_base)


def test_float32_route_matches_float64() -> None:
    knots, k, x, coef, w_base = _case(n=300, n_in=4, n_out=3, spread=1.5)
    outs = []
    for dtype in (F64, torch.float32):
        args = [t.to(dtype).requires_grad_() for t in (x, coef, w_base)]
        y = local_spline_contract(args[0], knots.to(dtype), k, args[1], torch.nn.functional.silu(args[0]), args[2])
        outs.append([y.detach(), *torch.autograd.grad(y.square().sum(), args)])
    for a, b in zip(*outs):  # float32 rounding, relative to each tensor's scale
        assert float((a - b.double()).abs().max()) <= 1e-5 * float(a.abs().max())
