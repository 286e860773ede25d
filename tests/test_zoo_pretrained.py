"""The pretrained models in zoo/ load and reproduce their formula and metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from physkan.problems import load_problem, make_dataset
from physkan.symbolic import equivalent, model_formula
from physkan.zoo import load_entry

pytestmark = pytest.mark.recovery

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


@pytest.mark.parametrize(
    ("name", "variables"),
    [
        ("relativistic-particle-lagrangian", ["q", "q_dot"]),
        ("oscillator-2d-h3-conservation", ["x", "y", "px", "py"]),
        ("neo-hookean-p11-regression", ["F11", "F12", "F21", "F22"]),
        ("neo-hookean-p12-regression", ["F11", "F12", "F21", "F22"]),
    ],
)
def test_model_outputs_equal_its_formula(name: str, variables: list[str]) -> None:
    from physkan.symbolic.parse import lambdify_torch

    entry = load_entry(name, zoo=ZOO)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(200, len(variables), generator=gen, dtype=torch.float64) * 0.4 + 0.8
    if name.startswith("relativistic"):
        x[:, 1] -= 0.8  # q_dot in [0, 0.4]
    if name.startswith("neo-hookean"):
        x[:, 1:3] -= 1.0  # off-diagonal F12, F21 in [-0.2, 0.2], as sampled
    with torch.no_grad():
        out = entry.model(x)[:, 0]
    if name.startswith("relativistic"):
        from physkan.physics.gauge import canonical_lagrangian

        found = canonical_lagrangian(model_formula(entry.model).expressions[0], ["q"])
        assert equivalent(found, entry.card.formula, variables, {"q": (-2, 2), "q_dot": (-0.9, 0.9)})
        return
    expected = lambdify_torch(entry.card.formula, variables)(x).reshape(-1)
    assert torch.allclose(out, expected, rtol=1e-9, atol=1e-12)
