"""physkan-kepler: the system model, data maker and conserved-quantity strategy."""

from __future__ import annotations

import pytest
import sympy
import torch
from physkan_kepler import KeplerSystem, discover_kepler

from physkan.physics.verify import conserved_quantities_check
from physkan.problems import ProblemError, load_problem, make_dataset, problem_from_dict


def test_named_problem_and_dataset() -> None:
    spec = load_problem("kepler-orbit")
    assert isinstance(spec.system, KeplerSystem) and spec.model.width == [4, 5, 1]
    data = make_dataset(spec)
    assert data.x_train.shape == (400, 4) and data.extras["f_train"].shape == (400, 4)
    energy = 0.5 * (data.x_train[:, 2:] ** 2).sum(1) - 1 / data.x_train[:, :2].norm(dim=1)
    assert (energy < 0).all()  # bound orbits only


def test_truth_is_conserved() -> None:
    system = KeplerSystem()
    checks = conserved_quantities_check(
        list(system.quantity_exprs().values()), system.dynamics_exprs(), system.symbols(),
        [(0.5, 2.0), (0.5, 2.0), (-1.0, 1.0), (-1.0, 1.0)],
    )  # fmt: skip
    assert all(r["conserved"] for r in checks["residuals"])
    assert checks["rank"] == 3  # E, L and A are related: A^2 = 1 + 2 E L^2


def test_validation_errors() -> None:
    bad = {"name": "k", "type": "kepler", "system": {"state": ["x", "y"]}}
    with pytest.raises(ProblemError, match="4 distinct"):
        problem_from_dict(bad)


@pytest.mark.recovery
def test_strategy_recovers_energy_momentum_and_lrl() -> None:
    spec = load_problem("kepler-orbit").updated({"data.n_train": 120, "data.n_test": 60})
    result = discover_kepler(spec, make_dataset(spec), lambda _m: None)
    assert result.recovered, result.recovery
    x, y, px, py = sympy.symbols("x y px py")  # found formulas use plain symbols
    assert any(sympy.simplify(f - (x * py - y * px)) == 0 or sympy.simplify(f + (x * py - y * px)) == 0
               for f in result.formulas)  # fmt: skip
    assert torch.is_tensor(make_dataset(spec).x_test)
