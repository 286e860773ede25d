"""S2KAN on the Lightning engine: per-parameter learning rates, the MDL objective and its ramp,
the Levenberg–Marquardt refit, and a ``ddp_spawn`` MDL phase."""

from __future__ import annotations

import math

import pytest
import torch

from physkan.s2kan import S2KAN
from physkan.s2kan.levenberg import levenberg_marquardt
from physkan.s2kan.objective import MDLObjective, MDLRamp, objective_floor, ramp
from physkan.train import RegressionObjective, fit
from physkan.train.module import PhyskanModule


def _sine(n: int = 300) -> dict[str, torch.Tensor]:
    x = torch.linspace(-1, 1, n, dtype=torch.float64)[:, None]
    return {"x": x, "y": torch.sin(2 * x)}


def test_param_lr_groups_and_lbfgs_refusal() -> None:
    model = S2KAN([1, 1])
    opt = PhyskanModule(model, RegressionObjective(), optimizer="adam", lr=1e-3,
                        param_lr={"log_alpha": 0.5}).configure_optimizers()  # fmt: skip
    rates = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert rates[id(model.layers[0].log_alpha)] == 0.5
    assert rates[id(model.layers[0].coef)] == 1e-3
    with pytest.raises(ValueError, match="param_lr"):
        PhyskanModule(model, RegressionObjective(), optimizer="lbfgs", param_lr={"log_alpha": 0.5})


def test_ramp_and_floor() -> None:
    assert ramp(0, 300, 0.5) == 0.0 and ramp(40, 300, 0.5) == 0.0
    assert 0 < ramp(100, 300, 0.5) < 1 and ramp(150, 300, 0.5) == 1.0 and ramp(299, 300, 0.5) == 1.0
    y = torch.randn(100, 1, dtype=torch.float64) * 3
    assert math.isclose(objective_floor({"x": y, "y": y}, 1e-3), 1e-6 * float(y.var()), rel_tol=1e-9)
    assert math.isclose(objective_floor({"state": y, "qddot": y}, 1e-3), 1e-6 * float(y.var()), rel_tol=1e-9)
    assert objective_floor({"z": y, "f": y}, 1e-3) == 1e-6  # conservation loss is already relative


@pytest.mark.recovery
def test_mdl_phase_on_engine_closes_useless_gates() -> None:
    """The ramped model cost, trained through ``physkan.train.fit``, closes terms the data do
    not need while the one that fits (sin) stays open."""
    data = _sine()
    model = S2KAN([1, 1], library=["sin", "exp", "x^2"], seed=0).double()
    layer = model.layers[0]
    with torch.no_grad():  # sin starts fitted; exp and x^2 are open but useless
        layer.a[0, 0, 0], layer.c[0, 0, 0] = 2.0, 1.0
        layer.coef.zero_()
        layer.log_alpha.fill_(3.0)
    objective = MDLObjective(RegressionObjective(), n=300, floor=objective_floor(data, 1e-5))
    before = float(model.model_cost_bits(300).detach())
    fit(model, objective, data, steps=200, optimizer="adam", lr=1e-3, param_lr={"log_alpha": 0.1},
        callbacks=[MDLRamp(200, 0.5)])  # fmt: skip
    assert objective.lam == 1.0
    assert float(model.model_cost_bits(300).detach()) < 0.5 * before
    opened = {name for *_, name in model.eval().open_terms()}
    assert "sin" in opened and "exp" not in opened


def test_levenberg_marquardt_walks_to_exact_parameters() -> None:
    data = _sine()
    model = S2KAN([1, 1], library=["sin"], use_spline=False).double().eval()
    layer = model.layers[0]
    with torch.no_grad():
        layer.a[0, 0, 0], layer.b[0, 0, 0], layer.c[0, 0, 0] = 1.7, 0.2, 1.3
        layer.hard.fill_(1.0)
    assert levenberg_marquardt(model, data["x"], data["y"])
    with torch.no_grad():
        assert float(((model(data["x"]) - data["y"]) ** 2).mean()) < 1e-24
    # soft gates: not refitted
    layer.hard.fill_(0.0)
    assert not levenberg_marquardt(model, data["x"], data["y"])


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_mdl_phase_under_ddp_spawn() -> None:
    """Two CPU workers (gloo): gates and model cost train in sync and come back to the parent."""
    data = _sine(200)
    model = S2KAN([1, 1], library=["sin", "exp"], seed=0).double()
    start = model.layers[0].log_alpha.detach().clone()
    objective = MDLObjective(RegressionObjective(), n=200, floor=objective_floor(data, 1e-5))
    res = fit(model, objective, data, steps=20, optimizer="adam", lr=1e-2, param_lr={"log_alpha": 0.1},
              callbacks=[MDLRamp(20, 0.5)], accelerator="cpu", devices=2, strategy="ddp_spawn")  # fmt: skip
    assert res.metrics["physkan/param_divergence"] == 0.0
    assert not torch.equal(model.layers[0].log_alpha, start)
    assert math.isfinite(res.final_loss)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_default_library_products_train_frozen_under_ddp_spawn() -> None:
    """The default library (whose sympy builders are lambdas) pickles into the workers, and
    edges frozen for a warm-up stay frozen there (a buffer, not a tensor hook)."""
    from physkan.s2kan.train import _frozen, _products

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(200, 2, generator=gen, dtype=torch.float64) * 2 - 1
    data = {"x": x, "y": x[:, :1] * x[:, 1:] + torch.sin(x[:, :1])}
    model = S2KAN([2, [1, 1], 1]).double()
    for layer in model.layers:  # spline-only, as in the warm-up
        layer.mask[..., :-1] = 0.0
        layer.hard.fill_(1.0)
    coef = model.layers[0].coef.detach().clone()
    with _frozen(model, _products(model)):
        fit(model, RegressionObjective(), data, steps=5, optimizer="adam", lr=1e-2, accelerator="cpu",
            devices=2, strategy="ddp_spawn")  # fmt: skip
    after = model.layers[0].coef.detach()
    assert torch.equal(after[:, 1:], coef[:, 1:])  # product subnodes 1, 2: untouched
    assert not torch.equal(after[:, 0], coef[:, 0])  # the sum subnode trained
    assert not bool(model.layers[0].frozen.any())
