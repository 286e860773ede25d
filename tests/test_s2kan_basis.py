"""S2KAN honours ``[model].basis`` (issue 13, part E): its spline terms use that family."""

from __future__ import annotations

import pytest
import torch

from physkan.problems.loader import problem_from_dict
from physkan.s2kan import S2KAN, S2KANTrainConfig, s2kan_discover
from physkan.strategies import s2kan_fit


def _spec(basis: str):
    return problem_from_dict({
        "name": "s2kan-basis", "type": "regression",
        "system": {"variables": ["x"], "target": "sin(x)"},
        "data": {"n_train": 64, "n_test": 32, "ranges": {"x": [-2, 2]}},
        "model": {"kind": "s2kan", "width": [1, 1], "basis": basis, "grid": 6},
        "discover": {"library": ["x", "sin"]},
    }, source="test")  # fmt: skip


@pytest.mark.parametrize("basis", ["bspline", "rbf"])
def test_s2kan_model_uses_the_problem_basis(basis: str) -> None:
    model = s2kan_fit.s2kan_model(_spec(basis), [1, 1], ["x"], ["y"])
    layer = model.layers[0]
    assert layer.basis.name == basis and model.config()["basis"] == basis
    assert S2KAN.from_config(model.config()).layers[0].basis.name == basis
    x = torch.linspace(-1, 1, 41, dtype=torch.float64)[:, None]
    assert layer.spline_basis(x).shape == (41, 1, layer.basis.num_basis(6, 3))
    # the initial edge is a linear function w*x, whatever the family (identity coefficients)
    ident = torch.einsum("nib,ib->ni", layer.spline_basis(x), layer.greville())
    tol = 1e-12 if basis == "bspline" else 0.1
    assert float((ident - x).abs().max()) < tol


def test_unknown_basis_is_rejected_with_the_field() -> None:
    with pytest.raises(Exception, match="basis"):
        _spec("no-such-basis")


def test_s2kan_discovery_passes_the_basis(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def spy(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop")

    import physkan.s2kan

    monkeypatch.setattr(physkan.s2kan, "s2kan_discover", spy)  # fit_s2kan imports it lazily
    spec = _spec("rbf")
    from physkan.problems import make_dataset

    with pytest.raises(RuntimeError, match="stop"):
        s2kan_fit.fit_s2kan(spec, make_dataset(spec), [1, 1])
    assert seen["basis"] == "rbf"


def test_s2kan_trains_with_rbf_splines() -> None:
    torch.manual_seed(0)
    x = torch.linspace(-2, 2, 64, dtype=torch.float64)[:, None]
    y = torch.sin(x)
    cfg = S2KANTrainConfig(warmup_steps=20, mdl_steps=30, refit_iters=10, polish=False)
    res = s2kan_discover(x, y, x, y, ["x"], ["y"], width=[1, 1], library=["x", "sin"],
                         basis="rbf", config=cfg)  # fmt: skip
    assert res.model.layers[0].basis.name == "rbf"
    assert res.test_rmse < 0.1
