"""Compiled local B-spline kernels (physkan.kan.native): the same numbers as the dense basis
matmul (1e-12 in float64), the same bits at any thread count, NaN where a dense basis row
holding NaN would give it, and the PyTorch route whenever the kernels cannot be built."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from physkan.kan import native
from physkan.kan.basis import bspline_basis
from physkan.kan.layer import KANLayer
from physkan.kan.local_basis import derivative, uniform_bspline_matrix
from physkan.kan.local_spline import local_spline_contract
from physkan.kan.network import MultKAN

F64 = torch.float64

needs_native = pytest.mark.skipif(
    native._compiler() is None, reason="no C compiler: the compiled kernels cannot be built here"
)


def _case(k: int, dtype=F64, n: int = 200, n_in: int = 3, n_out: int = 5, grid: int = 6, spread: float = 2.5):
    """Uniform grid on [-1, 1]; points inside, on the padded ends, beyond them, and exactly on
    the first knot and just inside the last."""
    ends = torch.ones(n_in, dtype=dtype)
    knots = KANLayer(1, 1).basis.make_grid(-ends, ends, grid, k)
    gen = torch.Generator().manual_seed(11 + k)
    x = (torch.rand(n, n_in, generator=gen, dtype=F64) * 2 - 1).to(dtype) * spread
    x = torch.cat([x, knots[:, :1].T, knots[:, -1:].T - 1e-6])
    coef = torch.randn(n_in * (grid + k), n_out, generator=gen, dtype=F64).to(dtype)
    return knots, x, coef


def _kernels(x, knots, k, coef, g):
    """(y, dL/dcoef, dL/dx) from the three compiled kernels."""
    t0, h = knots[:, 0].contiguous(), (knots[:, 1] - knots[:, 0]).contiguous()
    nb = coef.shape[0] // x.shape[1]
    m = torch.tensor(uniform_bspline_matrix(k), dtype=x.dtype)
    d = torch.tensor(derivative(uniform_bspline_matrix(k)), dtype=x.dtype)
    return (
        native.spline_forward(x, t0, h, nb, k, m, coef),
        native.spline_coef_grad(x, t0, h, nb, k, m, g),
        native.spline_input_grad(x, t0, h, nb, k, d, g @ coef.T),
    )


def _dense(x, knots, k, coef, g):
    xr, cr = x.clone().requires_grad_(), coef.clone().requires_grad_()
    y = bspline_basis(xr, knots, k).reshape(x.shape[0], -1) @ cr
    gx, gc = torch.autograd.grad(y, (xr, cr), g)
    return y.detach(), gc, gx


@needs_native
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_kernels_equal_the_dense_basis_to_1e_12_in_float64(k: int) -> None:
    assert native.available(torch.zeros(1, dtype=F64), k=k)
    knots, x, coef = _case(k)
    g = torch.randn(x.shape[0], coef.shape[1], dtype=F64, generator=torch.Generator().manual_seed(3))
    for ours, ref in zip(_kernels(x, knots, k, coef, g), _dense(x, knots, k, coef, g)):
        assert torch.allclose(ours, ref, atol=1e-12, rtol=1e-12)


@needs_native
def test_float32_kernels_match_float64() -> None:
    knots, x, coef = _case(3)
    g = torch.randn(x.shape[0], coef.shape[1], dtype=F64, generator=torch.Generator().manual_seed(4))
    exact = _dense(x, knots, 3, coef, g)
    single = _kernels(x.float(), knots.float(), 3, coef.float(), g.float())
    for a, b in zip(single, exact):
        assert a.dtype == torch.float32
        assert float((a.double() - b).abs().max()) <= 1e-5 * float(b.abs().max())


@needs_native
def test_same_bits_at_one_and_two_threads() -> None:
    """Each output element is one thread's sum in a fixed order: no thread-count rounding."""
    knots, x, coef = _case(3, n=1500, n_in=7, n_out=33)  # odd sizes: uneven chunks and tails
    g = torch.randn(x.shape[0], coef.shape[1], dtype=F64, generator=torch.Generator().manual_seed(5))
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(_kernels(x.float(), knots.float(), 3, coef.float(), g.float()))
    finally:
        torch.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


@needs_native
def test_non_finite_inputs_give_nan_where_the_dense_route_does() -> None:
    knots, x, coef = _case(3, n=30)
    x = x.clone()
    x[3, 0], x[5, 1], x[7, 2] = float("nan"), float("inf"), -float("inf")
    g = torch.zeros(x.shape[0], coef.shape[1], dtype=F64)
    g[[3, 5, 7]] = 1.0
    y, gc, gx = _kernels(x, knots, 3, coef, g)
    bad = torch.zeros(x.shape[0], dtype=torch.bool)
    bad[[3, 5, 7]] = True
    assert torch.isnan(y[bad]).all() and torch.isfinite(y[~bad]).all()
    assert torch.isnan(gx[3, 0]) and torch.isnan(gx[5, 1]) and torch.isnan(gx[7, 2])
    assert torch.isnan(gc).any()  # the NaN basis rows reach the coefficient gradient
    clean = torch.ones_like(g)
    clean[bad] = 0.0
    _, gc_clean, gx_clean = _kernels(x[~bad], knots, 3, coef, clean[~bad])
    assert torch.isfinite(gc_clean).all() and torch.isfinite(gx_clean).all()


@needs_native
def test_layer_uses_the_kernels_and_matches_the_pytorch_route(monkeypatch) -> None:
    """A network on the local path gives the same loss and gradients with the compiled
    kernels and with the PyTorch route; gradcheck / gradgradcheck pass through them."""
    calls = []
    for name in ("spline_forward", "spline_coef_grad", "spline_input_grad"):
        kernel = getattr(native, name)
        monkeypatch.setattr(native, name, lambda *a, _k=kernel, _n=name: calls.append(_n) or _k(*a))
    torch.manual_seed(0)
    model = MultKAN([4, 8, 3], grid=7, seed=1).double()
    for layer in model.layers:
        layer.spline_path = "local"
        # uniform in float64 (a float32 grid cast by .double() is uniform only to ~1e-8)
        ends = torch.ones(layer.in_dim, dtype=F64)
        layer.grid = layer.basis.make_grid(-ends, ends, layer.grid_size, layer.k)
    x = torch.rand(300, 4, dtype=F64) * 2.4 - 1.2
    results = []
    for off in (False, True):
        model.zero_grad()
        with native.disabled() if off else torch.enable_grad():
            loss = model(x).square().mean()
            loss.backward()
        results.append([loss.detach()] + [p.grad.clone() for p in model.parameters() if p.grad is not None])
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-12, rtol=1e-10)
    # the first pass ran the compiled kernels (both layers forward and dC, the second's dx),
    # the second pass (disabled) none
    assert sorted(set(calls)) == ["spline_coef_grad", "spline_forward", "spline_input_grad"]
    assert calls.count("spline_forward") == 2

    knots, xs, coef = _case(3, n=9, n_in=2, n_out=2, grid=4, spread=1.3)
    base = torch.randn(xs.shape[0], 2, dtype=F64)
    w_base = torch.randn(2, 2, dtype=F64)
    inputs = [t.clone().requires_grad_() for t in (xs, coef, base, w_base)]

    def f(x, c, b, w):
        return local_spline_contract(x, knots, 3, c, b, w)

    assert gradcheck(f, inputs)
    assert gradgradcheck(f, inputs)


def test_no_compiler_leaves_the_pytorch_route(monkeypatch, tmp_path) -> None:
    """A failed build is no error: available() is False and the layer still computes."""
    monkeypatch.setattr(native, "_state", {})
    monkeypatch.setenv("PHYSKAN_NATIVE_DIR", str(tmp_path))
    monkeypatch.setenv("PHYSKAN_CC", "false")  # a "compiler" that always fails
    monkeypatch.setattr(native, "_compiler", lambda: "false")
    assert not native.available(torch.zeros(1))
    assert not list(tmp_path.glob("*.so"))  # nothing half-written published
    knots, x, coef = _case(3, n=50)
    g = torch.ones(x.shape[0], coef.shape[1], dtype=F64)
    y = local_spline_contract(x.requires_grad_(), knots, 3, coef)
    (gx,) = torch.autograd.grad(y, x, g)
    ref_y, _, ref_gx = _dense(x.detach(), knots, 3, coef, g)
    assert torch.allclose(y, ref_y, atol=1e-12) and torch.allclose(gx, ref_gx, atol=1e-12)


def test_disabled_by_environment(monkeypatch) -> None:
    monkeypatch.setattr(native, "_state", {})
    monkeypatch.setenv("PHYSKAN_NATIVE", "0")
    assert not native.available(torch.zeros(1))


@needs_native
def test_build_is_published_atomically_and_reused(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(native, "_state", {})
    monkeypatch.setenv("PHYSKAN_NATIVE_DIR", str(tmp_path))
    assert native.available(torch.zeros(1))
    built = list(tmp_path.glob("bspline-*.so"))
    assert built == [native.library_path()]
    assert [p.name for p in tmp_path.iterdir()] == [built[0].name]  # no temp files left
    stamp = built[0].stat().st_mtime_ns
    monkeypatch.setattr(native, "_state", {})
    assert native.available(torch.zeros(1))  # a second process loads it: no rebuild
    assert built[0].stat().st_mtime_ns == stamp


def test_unsupported_tensors_take_the_pytorch_route() -> None:
    assert not native.available(torch.zeros(1, dtype=torch.float16))
    assert not native.available(torch.zeros(1), torch.zeros(1, dtype=F64))  # mixed dtypes
    assert not native.available(torch.zeros(1), k=99)


@needs_native
def test_inconsistent_shapes_raise_instead_of_reading_past_memory() -> None:
    knots, x, coef = _case(3, n=20)
    t0, h = knots[:, 0].contiguous(), (knots[:, 1] - knots[:, 0]).contiguous()
    m = torch.tensor(uniform_bspline_matrix(3), dtype=F64)
    with pytest.raises(ValueError, match="rows"):
        native.spline_forward(x, t0, h, 9, 3, m, coef[:-1])
    with pytest.raises(ValueError, match="t0, h"):
        native.spline_forward(x, t0[:-1], h, 9, 3, m, coef)
    with pytest.raises(ValueError, match="full"):
        native.spline_input_grad(x, t0, h, 9, 3, m, torch.zeros(x.shape[0], 5, dtype=F64))
    with pytest.raises(ValueError, match="grid"):
        native.spline_basis(x, knots[:-1], 3)
    with pytest.raises(ValueError, match="knots"):
        native.spline_basis(x, knots[:, :4], 3)


def _general_knots(k: int, dtype, trial: int, n_in: int = 3):
    """Sorted random knots (a repeated one every fourth trial) and points inside, outside,
    on knots, NaN and infinite."""
    gen = torch.Generator().manual_seed(100 * k + trial)
    knots = torch.sort(torch.randn(n_in, 6 + 2 * k + trial % 5, generator=gen, dtype=F64) * 2, dim=1).values
    if trial % 4 == 0:
        knots[:, 3] = knots[:, 2]
    x = torch.randn(300, n_in, generator=gen, dtype=F64) * 3
    x[0, 0], x[1, 1], x[2, 2] = float("nan"), float("inf"), -float("inf")
    x[3, 0], x[4, 0], x[5, 1] = knots[0, 0], knots[0, -1], knots[1, 3]
    return knots.to(dtype), x.to(dtype)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_basis_kernel_gives_the_same_bits_as_the_pytorch_route_on_any_knots(dtype) -> None:
    """Non-uniform knots (what update_grid makes): the compiled dense basis is bit for bit the
    de Boor triangle of the PyTorch route, NaN and infinite points and repeated knots included."""
    for k in (1, 2, 3, 4, 5):
        for trial in range(8):
            knots, x = _general_knots(k, dtype, trial)
            fast = native.spline_basis(x, knots, k)
            with native.disabled():
                slow = bspline_basis(x, knots, k)
            assert fast.dtype == dtype and fast.shape == slow.shape
            assert torch.equal(fast, slow), (k, trial)


@needs_native
def test_basis_kernels_keep_every_derivative(monkeypatch) -> None:
    """Inference and training take the compiled basis (reverse mode: a compiled first-order
    backward, equal to autograd through the PyTorch route to 1e-12); a backward with
    create_graph differentiates the PyTorch route (Hessians); forward mode and torch.func
    keep the PyTorch route."""
    calls = {"basis": 0, "grad": 0}
    real_basis, real_grad = native.spline_basis, native.spline_basis_grad

    def count(name, fn):
        def wrapped(*args):
            calls[name] += 1
            return fn(*args)
        return wrapped

    monkeypatch.setattr(native, "spline_basis", count("basis", real_basis))
    monkeypatch.setattr(native, "spline_basis_grad", count("grad", real_grad))
    knots, x = _general_knots(3, F64, 1)
    x = x[6:].contiguous()  # finite points
    gen = torch.Generator().manual_seed(5)
    weights = torch.randn(x.shape[0], x.shape[1], knots.shape[1] - 4, generator=gen, dtype=F64)
    bspline_basis(x, knots, 3)
    with torch.no_grad():
        bspline_basis(x.requires_grad_(), knots, 3)
    assert calls == {"basis": 2, "grad": 0}
    xg = x.detach().requires_grad_()
    (gx,) = torch.autograd.grad((bspline_basis(xg, knots, 3) * weights).sum(), xg)
    assert calls == {"basis": 3, "grad": 1}
    with native.disabled():
        (ref,) = torch.autograd.grad((bspline_basis(xg, knots, 3) * weights).sum(), xg)
    assert torch.allclose(gx, ref, rtol=1e-12, atol=1e-12)
    few = x[:12].detach().requires_grad_()
    assert gradgradcheck(lambda v: (bspline_basis(v, knots, 3) * weights[:12]).sum(-1), (few,))
    before = calls["basis"]
    jac = torch.func.jacfwd(lambda v: (bspline_basis(v, knots, 3) * weights[:4]).sum((-1, -2)))(x[:4].detach())
    assert torch.allclose(jac.sum(0), ref[:4], rtol=1e-12, atol=1e-12)  # forward mode agrees
    with torch.autograd.forward_ad.dual_level():
        dual = torch.autograd.forward_ad.make_dual(x.detach(), torch.ones_like(x))
        tangent = torch.autograd.forward_ad.unpack_dual(bspline_basis(dual, knots, 3)).tangent
    assert tangent is not None
    assert calls["basis"] == before  # jacfwd and the dual tensor: the PyTorch route


@needs_native
def test_layer_on_an_adaptive_grid_trains_the_same_with_the_kernels() -> None:
    """A KAN whose grid update left non-uniform knots (grid_eps < 1): a few Adam steps give
    the same parameters with and without the compiled basis (float64, to 1e-12)."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(400, 2, generator=gen, dtype=F64)
    y = torch.sin(x[:, :1]) * x[:, 1:]
    models = []
    for use_native in (True, False):
        model = MultKAN([2, 4, 1], grid=5, grid_eps=0.02, seed=0).double()
        model.update_grid(x)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        with contextlib.nullcontext() if use_native else native.disabled():
            for _ in range(5):
                opt.zero_grad()
                ((model(x) - y) ** 2).mean().backward()
                opt.step()
        models.append(model)
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)
