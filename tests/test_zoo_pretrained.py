"""The pretrained models in zoo/ load and reproduce their formula and metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from physkan.problems import load_problem, make_dataset
from physkan.symbolic import equivalent, model_formula
from physkan.zoo import load_entry

ZOO = Path(__file__).resolve().parents[1] / "zoo"


def _data(name: str):
    return make_dataset(load_problem(name))


def test_pendulum_lagrangian_reproduces_formula_and_accelerations() -> None:
    from physkan.physics import lagrangian_accelerations
    from physkan.physics.gauge import canonical_lagrangian

    entry = load_entry("pendulum-lagrangian", zoo=ZOO)
    assert entry.card.formula == "q_dot**2/2 + cos(q)"
    model = entry.model
    expr = canonical_lagrangian(model_formula(model).expressions[0], ["q"])
    assert str(expr) == entry.card.formula
    data = _data("pendulum")
    pred = lagrangian_accelerations(model, data.x_test, create_graph=False, cond_max=None)
    rmse = float(((pred - data.extras["qddot_test"]) ** 2).mean().sqrt())
    assert rmse == pytest.approx(entry.card.metrics["test_rmse"], abs=1e-12)


def test_tutorial_model_reproduces_formula_and_rmse() -> None:
    entry = load_entry("tutorial-regression", zoo=ZOO)
    data = _data("tutorial")
    found = model_formula(entry.model, data.x_train, data.y_train).expressions[0]
    assert equivalent(found, entry.card.formula, ["x", "y"], {"x": (-1, 1), "y": (-1, 1)})
    with torch.no_grad():
        rmse = float(((entry.model(data.x_test) - data.y_test) ** 2).mean().sqrt())
    assert rmse == pytest.approx(entry.card.metrics["test_rmse"], abs=1e-9)


def test_schwarzschild_spline_is_flat_to_1e_12() -> None:
    from physkan.physics.metric import spatial_flatness_loss

    entry = load_entry("schwarzschild-metric", zoo=ZOO)
    assert entry.card.formula == "sqrt(r)/(r - 1)"
    data = _data("schwarzschild")
    with torch.no_grad():
        loss = float(spatial_flatness_loss(entry.model, data.x_train, 0.5, derivative_given=True))
    assert loss <= 1e-12
    assert loss == pytest.approx(entry.card.metrics["spline_loss"], rel=1e-6)
