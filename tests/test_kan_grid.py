"""Grid update and grid extension preserve the function; the tutorial fit reaches the paper's accuracy."""

from __future__ import annotations

import pytest
import torch

from physkan import MultKAN


def tutorial(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(torch.sin(torch.pi * x[:, :1]) + x[:, 1:] ** 2)


def lbfgs(model, x, y, steps: int, update_grid_every: int | None = None, until: int = 50) -> None:
    opt = None
    for step in range(steps):
        update = update_grid_every is not None and step % update_grid_every == 0 and step < until
        if update:
            model.update_grid(x)
        if opt is None or update:
            opt = torch.optim.LBFGS(
                model.parameters(), lr=1.0, max_iter=20, history_size=10,
                line_search_fn="strong_wolfe", tolerance_grad=1e-32, tolerance_change=1e-32,
            )

        def closure(opt=opt):
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            return loss

        opt.step(closure)


def rmse(model, x, y) -> float:
    with torch.no_grad():
        return ((model(x) - y) ** 2).mean().sqrt().item()


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    x_train = torch.rand(1000, 2, generator=g, dtype=torch.float64) * 2 - 1
    x_test = torch.rand(1000, 2, generator=g, dtype=torch.float64) * 2 - 1
    return x_train, tutorial(x_train), x_test, tutorial(x_test)


@pytest.fixture(scope="module")
def trained(data):
    x_train, y_train, x_test, y_test = data
    model = MultKAN([2, 5, 1], grid=5, k=3, seed=0).double()
    lbfgs(model, x_train, y_train, steps=30, update_grid_every=5)
    return model


def test_lbfgs_tutorial_reaches_1e_2_then_refine_reaches_1e_3(data, trained) -> None:
    x_train, y_train, x_test, y_test = data
    assert rmse(trained, x_test, y_test) < 1e-2
    fine = trained.copy().refine(20)
    lbfgs(fine, x_train, y_train, steps=30)
    assert rmse(fine, x_test, y_test) < 1e-3


def test_update_grid_keeps_output(data, trained) -> None:
    x_train, _, x_test, _ = data
    model = trained.copy()
    before = model(x_test).detach()
    model.update_grid(x_train)
    change = (model(x_test).detach() - before).abs().max().item()
    assert change < 1e-3 * before.std().item()


@pytest.mark.parametrize(("new_grid", "tolerance"), [(10, 1e-6), (15, 1e-6), (20, 1e-6), (13, 1e-2)])
def test_refine_keeps_output(data, trained, new_grid: int, tolerance: float) -> None:
    """Nested grids (multiples of G) preserve the function exactly, others to least squares."""
    _, _, x_test, _ = data
    model = trained.copy()
    before = model(x_test).detach()
    model.refine(new_grid)
    assert all(layer.grid_size == new_grid for layer in model.layers)
    change = (model(x_test).detach() - before).abs().max().item()
    assert change < tolerance * before.std().item()


def test_update_grid_follows_data_range() -> None:
    model = MultKAN([1, 1], grid=5).double()
    x = torch.rand(300, 1, dtype=torch.float64) * 4 + 2  # data in [2, 6]
    model.update_grid(x)
    interior = model.layers[0].grid_interior()
    assert interior[0, 0].item() == pytest.approx(x.min().item(), abs=1e-3)
    assert interior[0, -1].item() == pytest.approx(x.max().item(), abs=1e-3)
    assert torch.all(torch.diff(model.layers[0].grid) > 0)


def test_adaptive_grid_follows_quantiles() -> None:
    model = MultKAN([1, 1], grid=4, grid_eps=0.0).double()
    x = (torch.rand(2000, 1, dtype=torch.float64) ** 3) * 2 - 1  # dense near -1
    model.update_grid(x)
    interior = model.layers[0].grid_interior()[0]
    expected = torch.quantile(x[:, 0], torch.linspace(0, 1, 5, dtype=torch.float64))
    assert torch.allclose(interior, expected, atol=5e-3)
