"""physkan-fourier: the basis values, derivatives and grid updates."""

from __future__ import annotations

import math

import torch
from physkan_fourier import FourierBasis

from physkan.kan.basis import available_basis_families, get_basis_family


def test_registered_through_plugin_manager() -> None:
    assert "fourier" in available_basis_families()
    assert isinstance(get_basis_family("fourier"), FourierBasis)


def test_values_and_shape() -> None:
    basis = FourierBasis()
    low, high = torch.tensor([-1.0, 0.0], dtype=torch.float64), torch.tensor([1.0, 2.0], dtype=torch.float64)
    grid = basis.make_grid(low, high, 3, 3)
    assert grid.shape == (2, 4)
    x = torch.rand(7, 2, dtype=torch.float64) * 2 - 1
    values = basis.evaluate(x, grid, 3)
    assert values.shape == (7, 2, basis.num_basis(3, 3)) == (7, 2, 7)
    u = (x[:, 0] + 1) / 2
    assert torch.allclose(values[:, 0, 0], torch.ones(7, dtype=torch.float64))
    assert torch.allclose(values[:, 0, 1], torch.cos(math.pi * u))
    assert torch.allclose(values[:, 0, 6], torch.sin(3 * math.pi * u))


def test_second_derivative_is_exact() -> None:
    basis = FourierBasis()
    grid = basis.make_grid(torch.tensor([0.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64), 2, 3)
    x = torch.rand(5, 1, dtype=torch.float64, requires_grad=True)
    value = basis.evaluate(x, grid, 3)[:, 0, 4].sum()  # sin(2 pi x)
    (d1,) = torch.autograd.grad(value, x, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), x)
    assert torch.allclose(d2, -((2 * math.pi) ** 2) * torch.sin(2 * math.pi * x.detach()))


def test_grid_update_and_refine_in_a_network() -> None:
    from physkan.kan.network import MultKAN

    model = MultKAN([1, 1], grid=3, k=3, basis="fourier", seed=0).double()
    x = torch.linspace(-0.8, 0.9, 64, dtype=torch.float64).unsqueeze(1)
    before = model(x).detach()
    model.update_grid(x)
    grid = model.layers[0].grid
    assert torch.allclose(grid[0, [0, -1]], torch.tensor([-0.8, 0.9], dtype=torch.float64))
    after = model(x).detach()
    rmse = float(((before - after) ** 2).mean().sqrt())
    assert rmse < 0.05 * float(before.std()) + 1e-9  # least-squares refit on the new range
    model.refine(5)  # harmonics 1..3 are kept, so the function is unchanged
    assert torch.allclose(model(x).detach(), after, atol=1e-8)
