"""KANLayer: fused hot path, autograd to second order, dtypes and input errors."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from physkan.kan.layer import KANLayer


def test_forward_equals_sum_of_edge_activations() -> None:
    layer = KANLayer(3, 4, grid_size=7, k=3, generator=torch.Generator().manual_seed(1))
    x = torch.rand(64, 3) * 2 - 1
    assert torch.allclose(layer(x), layer.edge_activations(x).sum(1), atol=1e-6)


def test_mask_removes_edge() -> None:
    layer = KANLayer(2, 2)
    x = torch.rand(32, 2) * 2 - 1
    before = layer.edge_activations(x)
    layer.mask[1, 0] = 0
    after = layer(x)
    expected = before.sum(1)
    expected[:, 0] -= before[:, 1, 0]
    assert torch.allclose(after, expected, atol=1e-6)


@pytest.mark.parametrize("basis", ["bspline", "rbf"])
def test_gradcheck_and_gradgradcheck_float64(basis: str) -> None:
    layer = KANLayer(2, 3, grid_size=5, k=3, basis=basis).double()
    x = (torch.rand(12, 2, dtype=torch.float64) * 1.8 - 0.9).requires_grad_()
    assert gradcheck(layer, (x,))
    assert gradgradcheck(layer, (x,))


def test_gradcheck_nonuniform_grid() -> None:
    layer = KANLayer(2, 2, grid_size=5, k=3).double()
    layer.update_grid(torch.rand(200, 2, dtype=torch.float64) ** 2 * 2 - 1)
    x = (torch.rand(10, 2, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
    assert gradcheck(layer, (x,))
    assert gradgradcheck(layer, (x,))


def test_hessian_by_double_autograd_matches_finite_differences() -> None:
    layer = KANLayer(1, 1, grid_size=6, k=3).double()
    x = torch.tensor([[0.3]], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(layer(x).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    eps = 1e-4
    f = lambda v: layer(torch.tensor([[v]], dtype=torch.float64)).item()  # noqa: E731
    fd = (f(0.3 + eps) - 2 * f(0.3) + f(0.3 - eps)) / eps**2
    assert h.item() == pytest.approx(fd, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes(dtype: torch.dtype) -> None:
    layer = KANLayer(3, 2).to(dtype)
    y = layer(torch.rand(8, 3, dtype=dtype))
    assert y.dtype == dtype


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "k"),
        ({"grid_size": 0}, "grid_size"),
        ({"in_dim": 0}, "in_dim"),
        ({"grid_range": (1.0, -1.0)}, "grid_range"),
        ({"base_fun": "relu6"}, "base_fun"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict, match: str) -> None:
    args = {"in_dim": 2, "out_dim": 2} | kwargs
    with pytest.raises(ValueError, match=match):
        KANLayer(**args)


def test_check_input_errors() -> None:
    layer = KANLayer(3, 1)
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 3\)"):
        layer.check_input(torch.rand(4, 2))
    with pytest.raises(ValueError, match="NaN"):
        layer.check_input(torch.tensor([[0.0, float("nan"), 0.0]]))
