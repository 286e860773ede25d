"""Single-process training: LBFGS/Adam regression, grid updates, callbacks, Lagrangian fits."""

from __future__ import annotations

import math
import time

import pytest
import torch

from physkan.kan import KAN
from physkan.physics import lagrangian_data, lagrangian_from_sympy
from physkan.train import (
    GridUpdate,
    LagrangianObjective,
    NamedCheckpoints,
    RegressionObjective,
    fit,
    make_trainer,
    update_grid_in_place,
)


def target(x: torch.Tensor) -> torch.Tensor:
    """f = exp(sin(pi x) + y^2): (N, 2) -> (N, 1)."""
    return torch.exp(torch.sin(math.pi * x[:, :1]) + x[:, 1:] ** 2)


@pytest.fixture(scope="module")
def data() -> dict[str, dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1000, 2, generator=gen, dtype=torch.float64) * 2 - 1
    xt = torch.rand(1000, 2, generator=gen, dtype=torch.float64) * 2 - 1
    return {"train": {"x": x, "y": target(x)}, "test": {"x": xt, "y": target(xt)}}


def rmse(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> float:
    with torch.no_grad():
        pred = model.double()(batch["x"])
    return float(((pred - batch["y"]) ** 2).mean().sqrt())


def test_lbfgs_reaches_rmse_1e_2(data) -> None:
    model = KAN([2, 5, 1], grid=5, seed=0)
    start = time.perf_counter()
    res = fit(model, RegressionObjective(), data["train"], val=data["test"], steps=15)
    wall = time.perf_counter() - start
    assert res.model is model and next(model.parameters()).dtype == torch.float32
    assert len(res.history) == 15 and res.history[-1] < 1e-2 * res.history[0]
    assert rmse(model, data["test"]) < 1e-2
    assert res.final_loss < res.history[-1] * 1.01
    assert "val_loss" in res.metrics and res.metrics["val_loss"] < 1e-3
    assert res.metrics["physkan/param_divergence"] == 0.0
    assert res.seconds <= wall


def test_adam_decreases_loss(data) -> None:
    model = KAN([2, 5, 1], grid=5, seed=0).double()
    res = fit(model, RegressionObjective(), data["train"], steps=60, optimizer="adam", lr=3e-2)
    assert next(model.parameters()).dtype == torch.float64
    assert res.history[-1] < 0.1 * res.history[0]
    assert math.isclose(res.final_loss, res.history[-1], rel_tol=0.2)


def test_grid_update_keeps_loss_continuous(data) -> None:
    model = KAN([2, 5, 1], grid=5, seed=0, grid_range=(-0.5, 0.5))
    updates = GridUpdate(every=2, until=8)
    res = fit(model, RegressionObjective(), data["train"], steps=8, callbacks=[updates])
    assert updates.updated_at == [0, 2, 4, 6]
    ratios = [b / a for a, b in zip(res.history, res.history[1:], strict=False)]
    assert max(ratios) < 10.0, ratios
    assert res.history[-1] < 1e-2 * res.history[0]
    interior = model.layers[0].grid_interior()
    assert interior.min() < -0.9 and interior.max() > 0.9  # adapted to the data in [-1, 1]


def test_update_grid_in_place_keeps_tensor_objects() -> None:
    model = KAN([2, 3, 1], seed=0).double()
    x = torch.rand(200, 2, dtype=torch.float64) * 4 - 2
    before = {id(p) for p in model.parameters()} | {id(b) for b in model.buffers()}
    coef = model.layers[0].coef
    grid0 = model.layers[0].grid.clone()
    y0 = model(x).detach()
    update_grid_in_place(model, x)
    after = {id(p) for p in model.parameters()} | {id(b) for b in model.buffers()}
    assert before == after and model.layers[0].coef is coef
    assert not torch.equal(model.layers[0].grid, grid0)
    assert torch.allclose(model(x), y0, atol=0.2)


def test_named_checkpoints_and_early_stop(data) -> None:
    model = KAN([2, 3, 1], grid=3, seed=0)
    ckpts = NamedCheckpoints(at={"start": 0, "two": 2, "late": 99})
    res = fit(
        model, RegressionObjective(), data["train"], steps=30, stop_loss=1e-2, callbacks=[ckpts]
    )
    assert 2 < len(res.history) < 30 and res.history[-1] <= 1e-2
    assert set(ckpts.names) == {"start", "two", "late", "final"}
    assert ckpts.saved_at["late"] == len(res.history)
    fresh = KAN([2, 3, 1], grid=3, seed=0)
    assert all(
        torch.equal(a, b.double())
        for a, b in zip(ckpts.states["start"].values(), fresh.state_dict().values(), strict=True)
    )
    ckpts.rewind("two", model)
    assert rmse(model, data["train"]) ** 2 > res.final_loss
    with pytest.raises(KeyError, match="no checkpoint"):
        ckpts.rewind("nope")


def test_regularised_fit_runs(data) -> None:
    model = KAN([2, 3, 1], grid=3, seed=0)
    res = fit(model, RegressionObjective(), data["train"], steps=3, lamb=1e-3)
    assert all(math.isfinite(v) for v in res.history)
    assert res.final_loss > rmse(model, data["train"]) ** 2  # includes lamb * reg


def test_objective_errors_surface(data) -> None:
    class Broken:
        def loss(self, model, batch):
            raise ValueError("broken objective")

        def grid_samples(self, batch):
            return batch["x"]

    with pytest.raises(ValueError, match="broken objective"):
        fit(KAN([2, 1]), Broken(), data["train"], steps=1)


def test_make_trainer_defaults() -> None:
    trainer = make_trainer(max_steps=3, progress=False, strategy="auto")
    assert trainer.max_steps == 3 and trainer.logger is None
    assert trainer.checkpoint_callback is None and not trainer.predict_loop.inference_mode
    assert trainer.precision == "64-true"
    assert make_trainer(max_steps=1, precision=32, progress=True).progress_bar_callback is not None


@pytest.fixture(scope="module")
def pendulum() -> dict[str, dict[str, torch.Tensor]]:
    L = lagrangian_from_sympy("q_dot**2/2 + cos(q)", ["q"])
    box = [(-math.pi, math.pi), (-2.0, 2.0)]
    return {
        "train": lagrangian_data(L, 1, box, 300, seed=0),
        "val": lagrangian_data(L, 1, box, 200, seed=1),
    }


def test_lagrangian_fit_with_autograd_validation(pendulum) -> None:
    """KAN [2, 1] L(q, q_dot) = phi_1(q) + phi_2(q_dot), float64.

    A random KAN has a velocity Hessian phi_2'' of either sign (possibly ~0), so the
    accelerations are undefined. We first fit the free particle L0 = q_dot^2 / 2 by
    regression (positive-definite mass), then train on the Euler-Lagrange residual.
    """
    model = KAN([2, 1], grid=5, seed=0, grid_range=(-3.2, 3.2)).double()
    state = pendulum["train"]["state"]
    warm = fit(model, RegressionObjective(), {"x": state, "y": state[:, 1:] ** 2 / 2}, steps=3)
    assert warm.final_loss < 1e-3
    res = fit(
        model, LagrangianObjective(), pendulum["train"], val=pendulum["val"], steps=4, val_every=2
    )
    assert res.history[-1] < 1e-2 * res.history[0]
    assert res.final_loss < res.history[-1]
    assert res.metrics["val_loss"] < 1e-2 * res.history[0]  # validation ran with autograd
