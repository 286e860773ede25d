"""Checkpoints, rewind and the hypothesis-testing session."""

from __future__ import annotations

import pytest
import torch
from _fit import fit_lbfgs

from physkan.interpret import Session, checkpoint, prune, rewind
from physkan.kan import MultKAN


@pytest.fixture()
def setup() -> tuple[MultKAN, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(200, 3, generator=gen) * 2 - 1
    y = (torch.sin(2 * x[:, :1]) + x[:, 1:2] ** 2)
    model = MultKAN([3, 4, 1], grid=5, seed=0)
    fit_lbfgs(model, x, y, steps=20, lamb=1e-2)
    return model, x, y


def _state(model: MultKAN) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_checkpoint_prune_rewind_restores_exactly(setup) -> None:
    model, x, y = setup
    before, cfg = _state(model), model.config()
    checkpoint(model, "trained")
    pruned = prune(model, x, node_th=0.3)
    assert pruned.n_nodes(1) < model.n_nodes(1)
    fit_lbfgs(pruned, x, y, steps=5)
    back = rewind(pruned, "trained")
    assert back is not pruned and back.config() == cfg
    for k, v in back.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_rewind_in_place_when_structure_unchanged(setup) -> None:
    model, x, y = setup
    before = _state(model)
    checkpoint(model, "a")
    fit_lbfgs(model, x, y, steps=5)
    assert not torch.equal(model.layers[0].coef, before["layers.0.coef"])
    assert rewind(model, "a") is model
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(KeyError, match="no checkpoint named 'zz'"):
        rewind(model, "zz")


def test_session_versions_log_and_branching(setup) -> None:
    model, x, y = setup
    session = Session(model)
    assert session.version == "0.0"
    session.fit(fit_lbfgs, x, y, steps=5)
    assert session.version == "0.1"
    v01 = _state(session.model)
    session.prune(x, node_th=0.3)
    assert session.version == "0.2" and session.model.n_nodes(1) < 4
    back = session.rewind("0.1")
    assert session.version == "1.1" and back is session.model
    assert all(torch.equal(v, v01[k]) for k, v in back.state_dict().items())
    session.checkpoint("hypothesis-A")
    assert [r.op for r in session.log] == ["fit", "prune", "rewind", "checkpoint"]
    rec = session.log[0]
    assert rec.args["arg0"] == "Tensor(200, 3)" and rec.args["steps"] == 5
    assert rec.duration >= 0 and rec.time > 0 and isinstance(rec.result, float)
    assert "prune" in session.describe()
    assert {"0.0", "0.1", "0.2", "1.1", "hypothesis-A"} <= set(session.history.names())
