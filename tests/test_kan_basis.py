"""Basis families: B-spline values against the textbook Cox-de Boor recursion, registry."""

from __future__ import annotations

import pytest
import torch

from physkan.kan.basis import (
    BasisFamily,
    UnknownBasisError,
    available_basis_families,
    get_basis_family,
    register_basis_family,
)


def cox_de_boor_scalar(x: float, knots: list[float], i: int, k: int) -> float:
    """Textbook recursion for one basis function B_{i,k}(x) (half-open intervals)."""
    if k == 0:
        return 1.0 if knots[i] <= x < knots[i + 1] else 0.0
    left_den = knots[i + k] - knots[i]
    right_den = knots[i + k + 1] - knots[i + 1]
    left = 0.0 if left_den == 0 else (x - knots[i]) / left_den * cox_de_boor_scalar(x, knots, i, k - 1)
    right = (
        0.0
        if right_den == 0
        else (knots[i + k + 1] - x) / right_den * cox_de_boor_scalar(x, knots, i + 1, k - 1)
    )
    return left + right


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("uniform", [True, False])
def test_bspline_matches_cox_de_boor(k: int, uniform: bool) -> None:
    family = get_basis_family("bspline")
    grid = family.make_grid(torch.tensor([-1.0]), torch.tensor([1.0]), 6, k).double()
    if not uniform:
        grid[0, k + 2] += 0.07  # a non-uniform interior knot
    knots = grid[0].tolist()
    xs = torch.linspace(-1.6, 1.6, 97, dtype=torch.float64)[:, None]
    values = family.evaluate(xs, grid, k)
    assert values.shape == (97, 1, 6 + k)
    for n, x in enumerate(xs[:, 0].tolist()):
        for b in range(6 + k):
            assert values[n, 0, b].item() == pytest.approx(
                cox_de_boor_scalar(x, knots, b, k), abs=1e-12
            )


def test_bspline_partition_of_unity_inside_grid() -> None:
    family = get_basis_family("bspline")
    grid = family.make_grid(torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 5.0]), 10, 3)
    x = torch.stack([torch.linspace(-1, 0.9999, 500), torch.linspace(0, 4.9999, 500)], 1)
    total = family.evaluate(x, grid, 3).sum(-1)
    assert torch.allclose(total, torch.ones_like(total), atol=1e-5)


def test_bspline_zero_outside_support() -> None:
    family = get_basis_family("bspline")
    grid = family.make_grid(torch.tensor([-1.0]), torch.tensor([1.0]), 5, 3)
    far = torch.tensor([[-10.0], [10.0]])
    assert family.evaluate(far, grid, 3).abs().max() == 0


def test_rbf_family_through_same_interface() -> None:
    family = get_basis_family("rbf")
    grid = family.make_grid(torch.tensor([-1.0]), torch.tensor([1.0]), 8, 3)
    x = torch.linspace(-1, 1, 11)[:, None]
    values = family.evaluate(x, grid, 3)
    assert values.shape == (11, 1, family.num_basis(8, 3))
    assert torch.all(values > 0) and torch.all(values <= 1)


def test_registry_unknown_name_lists_available() -> None:
    with pytest.raises(UnknownBasisError, match="bspline"):
        get_basis_family("bsplin")
    assert {"bspline", "rbf"} <= set(available_basis_families())


def test_register_custom_family_and_clash() -> None:
    class Hat(BasisFamily):
        name = "test-hat"

        def num_basis(self, grid_size: int, k: int) -> int:
            return grid_size + 1

        def make_grid(self, low, high, grid_size, k):
            return low[:, None] + (high - low)[:, None] * torch.linspace(0, 1, grid_size + 1)

        def interior(self, grid, k):
            return grid

        def grid_from_interior(self, interior, k):
            return interior

        def evaluate(self, x, grid, k):
            h = grid[:, 1:2] - grid[:, :1]
            return torch.relu(1 - ((x.unsqueeze(-1) - grid) / h).abs())

    register_basis_family(Hat(), overwrite=True)
    with pytest.raises(ValueError, match="already registered"):
        register_basis_family(Hat())
    from physkan import MultKAN

    model = MultKAN([1, 2, 1], basis="test-hat", grid=4)
    assert model(torch.rand(5, 1)).shape == (5, 1)
