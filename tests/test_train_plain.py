"""The plain LBFGS loop (``physkan.train.plain``) gives the Lightning engine's results bit
for bit, and ``physkan.train.fit`` uses it for small CPU fits without importing Lightning."""

from __future__ import annotations

import ast
import copy
import sys
import time
from pathlib import Path

import pytest
import torch

from physkan.budget import Budget, budget_scope
from physkan.kan import MultKAN
from physkan.train import fit
from physkan.train.objectives import RegressionObjective
from physkan.train.plain import ENGINE_ENV, plain_eligible, plain_fit
from physkan.train.trainer import fit as lightning_fit


def _data() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(200, 2, dtype=torch.float64, generator=g) * 2 - 1
    return {"x": x, "y": torch.exp(torch.sin(torch.pi * x[:, :1]) + x[:, 1:] ** 2)}


@pytest.mark.parametrize("options", [
    {"steps": 3},
    {"steps": 4, "lamb": 0.01, "grid_update_every": 2, "grid_update_until": 3},
    {"steps": 6, "stop_loss": 1e-2},
    {"steps": 2, "precision": 32, "max_iter": 5},
], ids=["plain", "sparsity-grid-updates", "early-stop", "float32"])  # fmt: skip
def test_plain_loop_matches_lightning_bit_for_bit(options: dict) -> None:
    data, model = _data(), MultKAN([2, 3, 1])
    results, states = [], []
    for engine in (lightning_fit, plain_fit):
        net = copy.deepcopy(model)
        results.append((net, engine(net, RegressionObjective(), data, **options)))
        states.append(torch.get_rng_state())  # the same random numbers drawn on the way
    (a, ra), (b, rb) = results
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert ra.history == rb.history and ra.final_loss == rb.final_loss
    assert ra.metrics == rb.metrics and a.training == b.training
    assert torch.equal(states[0], states[1])
    assert next(b.parameters()).dtype == next(model.parameters()).dtype  # back in the dtype it came in


def test_plain_loop_runs_no_step_past_the_deadline() -> None:
    budget = Budget.until(time.time() - 1.0)
    with budget_scope(budget):
        res = plain_fit(MultKAN([2, 2, 1]), RegressionObjective(), _data(), steps=5)
    assert res.history == [] and budget.exhausted


def test_only_plain_options_take_the_plain_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = dict(optimizer="lbfgs", val=None, callbacks=(), accelerator="cpu", devices=1, strategy="auto",
                 precision=64, progress=False, default_root_dir=None)  # fmt: skip
    assert plain_eligible(**plain)
    for key, value in (("optimizer", "adam"), ("val", {}), ("callbacks", [object()]), ("devices", 2),
                       ("strategy", "ddp"), ("precision", "bf16-mixed"), ("progress", True)):  # fmt: skip
        assert not plain_eligible(**{**plain, key: value}), key
    monkeypatch.setenv(ENGINE_ENV, "lightning")
    assert not plain_eligible(**plain)


def test_fit_of_a_small_cpu_problem_takes_the_plain_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    import physkan.train.trainer as trainer

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the Lightning engine ran")

    monkeypatch.setattr(trainer, "fit", refuse)
    assert len(fit(MultKAN([2, 2, 1]), RegressionObjective(), _data(), steps=2).history) == 2
    for module in ("plain", "core", "data", "objectives"):  # the plain path's own modules
        tree = ast.parse((Path(trainer.__file__).parent / f"{module}.py").read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [m for m in names if m.split(".")[0] in ("pytorch_lightning", "lightning")], module


def test_adam_still_trains_on_lightning() -> None:
    res = fit(MultKAN([2, 2, 1]), RegressionObjective(), _data(), steps=3, optimizer="adam")
    assert len(res.history) == 3 and "pytorch_lightning" in sys.modules
