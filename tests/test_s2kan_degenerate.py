"""An S2KAN Lagrangian never reaches a degenerate kinetic term.

A hard-concrete gate sample can close every velocity term of a Lagrangian at once; its mass
matrix is then exactly zero (``SingularHessianError``). These tests provoke that case on
purpose (the kinetic gate starts nearly closed, or pruned) so that they do not depend on the
CPU's floating-point path: exact zeros come from the gate clamp, not from round-off.
"""

from __future__ import annotations

import math

import pytest
import torch

from physkan.physics import SingularHessianError
from physkan.s2kan import S2KAN
from physkan.s2kan.gates import open_logit
from physkan.s2kan.objective import MDLObjective, objective_floor
from physkan.s2kan.train import S2KANTrainConfig, _loss, mdl_phase, prune, refit
from physkan.train.objectives import LagrangianObjective

LIBRARY = ["x^2", "cos"]
X2, COS = 0, 1


def _pendulum(n: int = 200) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    q = (torch.rand(n, 1, generator=gen, dtype=torch.float64) * 2 - 1) * 3.0
    v = (torch.rand(n, 1, generator=gen, dtype=torch.float64) * 2 - 1) * 2.0
    return {"state": torch.cat([q, v], 1), "qddot": -torch.sin(q)}


def _model(kinetic_open: float) -> S2KAN:
    """``L = ½ q̇² + cos q`` (no splines) whose only kinetic term has ``P(open) = kinetic_open``."""
    model = S2KAN([2, 1], LIBRARY, variables=["q", "q_dot"], outputs=["L"], seed=0).double()
    layer = model.layers[0]
    with torch.no_grad():
        layer.mask.zero_()
        layer.mask[0, 0, COS] = layer.mask[1, 0, X2] = 1.0
        layer.a.fill_(1.0), layer.b.zero_(), layer.c.zero_(), layer.d.zero_()
        layer.c[0, 0, COS], layer.c[1, 0, X2] = 1.0, 0.5
        layer.log_alpha.fill_(open_logit(0.99))
        layer.log_alpha[1, 0, X2] = open_logit(kinetic_open)
    return model


def _relative_residual(model: S2KAN, batch: dict[str, torch.Tensor]) -> float:
    return float(_loss(model, LagrangianObjective(cond_max=None), batch)) / float(batch["qddot"].var())


def test_mdl_objective_redraws_gate_samples_without_kinetic_term() -> None:
    batch = _pendulum()
    model = _model(kinetic_open=0.4).train()  # each sample closes the kinetic term w.p. 0.6
    base = LagrangianObjective(cond_max=None)
    failures = 0
    for _ in range(20):
        try:
            base.loss(model, batch)
        except SingularHessianError:
            failures += 1
    assert failures > 0  # the degenerate case really is provoked
    mdl = MDLObjective(base, n=200, floor=objective_floor(batch, model.resolution), lam=1.0)
    for _ in range(20):
        value = mdl.loss(model, batch)
        assert torch.isfinite(value)
        value.backward()
        assert torch.isfinite(model.layers[0].log_alpha.grad).all()


@pytest.mark.recovery
def test_mdl_phase_with_nearly_closed_kinetic_gate_recovers_the_pendulum() -> None:
    batch = _pendulum()
    objective = LagrangianObjective(cond_max=None)
    model = _model(kinetic_open=0.4)
    cfg = S2KANTrainConfig(mdl_steps=40, refit_iters=60)
    assert mdl_phase(model, objective, batch, cfg)
    prune(model, objective=objective, batch=batch)
    refit(model, objective, batch, iters=cfg.refit_iters, cfg=cfg)
    assert (0, 1, 0, "x^2") in model.open_terms()
    assert _relative_residual(model, batch) < 1e-8


def test_prune_reopens_the_kinetic_term_the_objective_needs() -> None:
    batch = _pendulum()
    objective = LagrangianObjective(cond_max=None)
    model = _model(kinetic_open=0.3)  # below the prune threshold
    plain = _model(kinetic_open=0.3)
    prune(plain)  # without an objective the term is closed: the mass matrix vanishes
    assert math.isnan(float(_loss(plain, objective, batch)))
    assert prune(model, objective=objective, batch=batch) == [(0, 1, 0, X2)]
    assert sorted(model.open_terms()) == [(0, 0, 0, "cos"), (0, 1, 0, "x^2")]
    assert _relative_residual(model, batch) < 1e-20


def test_mdl_phase_is_undone_when_the_deterministic_model_is_degenerate() -> None:
    batch = _pendulum()
    model = _model(kinetic_open=0.99)
    with torch.no_grad():
        model.layers[0].mask[1, 0, X2] = 0.0  # no velocity term at all: every gate sample degenerate
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert not mdl_phase(model, LagrangianObjective(cond_max=None), batch, S2KANTrainConfig(mdl_steps=5))
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("kinetic_open", [0.2, 0.4])
def test_prune_keeps_a_regression_model_unchanged(kinetic_open: float) -> None:
    """Re-opening only ever happens for an objective that is undefined: a regression fit of the
    same terms is pruned as before."""
    from physkan.train.objectives import RegressionObjective

    model = _model(kinetic_open)
    x = _pendulum()["state"]
    assert prune(model, objective=RegressionObjective(), batch={"x": x, "y": torch.cos(x[:, :1])}) == []
    assert (0, 1, 0, "x^2") not in model.open_terms()
