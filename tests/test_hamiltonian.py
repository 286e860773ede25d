"""The ``hamiltonian`` problem type: symplectic loss, sparse gradient fits, Kepler (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy
import torch

from physkan.physics.hamiltonian import hamiltonian_vector_field
from physkan.physics.losses import symplectic_loss
from physkan.problems import ProblemError, load_problem, make_dataset, problem_from_dict
from physkan.strategies.hamiltonian_fit import gradient_refit, pair_combination, sparse_gradient_fit

NAMES = ["x", "y", "p_x", "p_y"]


def kepler(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * (z[:, 2] ** 2 + z[:, 3] ** 2) - 1 / torch.sqrt(z[:, 0] ** 2 + z[:, 1] ** 2)


def _states(n: int = 200) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    z = torch.rand(n, 4, generator=gen, dtype=torch.float64) * 2 - 1
    z[:, :2] = z[:, :2] * 0.5 + torch.sign(z[:, :2]) * 0.7  # |x|, |y| in [0.2, 1.2]
    return z


def test_vector_field_is_hamiltons_equations_in_float64() -> None:
    z = _states(50)
    field = hamiltonian_vector_field(kepler, z)
    r3 = (z[:, 0] ** 2 + z[:, 1] ** 2) ** 1.5
    expected = torch.stack([z[:, 2], z[:, 3], -z[:, 0] / r3, -z[:, 1] / r3], 1)
    assert field.dtype == torch.float64
    assert torch.allclose(field, expected, atol=1e-12)


def test_symplectic_loss_zero_for_truth_and_differentiable() -> None:
    z = _states(64)
    zdot = hamiltonian_vector_field(kepler, z)
    assert float(symplectic_loss(kepler, z, zdot).detach()) < 1e-24
    scale = torch.tensor(0.9, dtype=torch.float64, requires_grad=True)
    loss = symplectic_loss(lambda x: scale * kepler(x), z, zdot)
    (grad,) = torch.autograd.grad(loss, scale, create_graph=True)
    assert float(loss.detach()) > 1e-4 and float(grad.detach()) < 0  # scaling H up towards 1 lowers the loss
    (second,) = torch.autograd.grad(grad, scale)
    assert float(second) > 0
    assert float(symplectic_loss(lambda x: kepler(x) + 3.0, z, zdot).detach()) < 1e-24  # additive gauge


def test_radial_combination_and_sparse_fit_from_gradients() -> None:
    z = _states()
    grad = torch.cat([-hamiltonian_vector_field(kepler, z)[:, 2:], hamiltonian_vector_field(kepler, z)[:, :2]], 1)
    u = pair_combination("x", "y", NAMES, z, grad[:, :2])
    x, y = sympy.symbols("x y")
    assert sympy.simplify(u - (x**2 + y**2)) == 0
    feats = [x, y, x**2, sympy.sqrt(u), 1 / sympy.sqrt(u), 1 / u]
    terms, err = sparse_gradient_fit(feats, ["x", "y"], NAMES, z, grad[:, :2])
    assert terms == [1 / sympy.sqrt(u)] and err < 1e-10


@pytest.mark.parametrize("noise", [0.0, 1e-3])
def test_gradient_refit_snaps_constants_and_drops_the_offset(noise: float) -> None:
    z = _states()
    zdot = hamiltonian_vector_field(kepler, z)
    zdot = zdot + noise * zdot.std(0) * torch.randn(zdot.shape, generator=torch.Generator().manual_seed(3),
                                                    dtype=zdot.dtype)  # fmt: skip
    x, y, px, py = sympy.symbols(NAMES)
    formula, err = gradient_refit([px**2, py**2, 1 / sympy.sqrt(x**2 + y**2), sympy.Integer(1) + 0 * x],
                                  NAMES, z, zdot)  # fmt: skip
    truth = px**2 / 2 + py**2 / 2 - 1 / sympy.sqrt(x**2 + y**2)
    assert sympy.simplify(formula - truth) == 0 and err < 1e-10 + noise


def test_gradient_refit_keeps_a_coefficient_that_is_not_simple() -> None:
    z = _states()
    zdot = hamiltonian_vector_field(lambda s: kepler(s) - 0.37 / torch.sqrt(s[:, 0] ** 2 + s[:, 1] ** 2), z)
    x, y, px, py = sympy.symbols(NAMES)
    formula, _ = gradient_refit([px**2 + py**2, 1 / sympy.sqrt(x**2 + y**2)], NAMES, z, zdot)
    assert formula.coeff(px**2) == sympy.Rational(1, 2)
    assert abs(float(formula.subs({px: 0, py: 0, x: 1, y: 0})) + 1.37) < 1e-9


def test_system_validation_names_the_field() -> None:
    base = {"name": "h", "type": "hamiltonian", "data": {"ranges": {"q": [0, 1], "p_q": [0, 1]}}}
    with pytest.raises(ProblemError, match=r"system\.hamiltonian.*does not depend on any momentum"):
        problem_from_dict({**base, "system": {"coordinates": ["q"], "hamiltonian": "q**2"}})
    with pytest.raises(ProblemError, match=r"system\.hamiltonian.*required unless \[data\]\.file"):
        problem_from_dict({**base, "system": {"coordinates": ["q"]}})
    with pytest.raises(ProblemError, match=r"data\.ranges\.p_q"):
        problem_from_dict({**base, "system": {"coordinates": ["q"], "hamiltonian": "p_q**2/2"},
                           "data": {"ranges": {"q": [0, 1]}}})  # fmt: skip


def test_sampled_kepler_dataset() -> None:
    spec = load_problem("kepler-hamiltonian").updated({"data.n_train": 50, "data.n_test": 20})
    data = make_dataset(spec)
    assert data.inputs == NAMES and data.outputs == ["x_dot", "y_dot", "p_x_dot", "p_y_dot"]
    assert torch.allclose(data.y_train, hamiltonian_vector_field(kepler, data.x_train), atol=1e-12)


@pytest.mark.slow
@pytest.mark.recovery
def test_kepler_hamiltonian_from_simulated_trajectories(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from physkan.cli import cli
    from physkan.discover import discover

    out = tmp_path / "kepler.csv"
    result = CliRunner().invoke(cli, ["simulate", "--problem", "kepler-hamiltonian", "--out", str(out),
                                      "--n-traj", "4", "--t-max", "6", "--noise", "1e-3"])  # fmt: skip
    assert result.exit_code == 0, result.output
    spec = load_problem("kepler-hamiltonian").updated({"data.file": str(out), "data.n_train": 400,
                                                        "data.n_test": 200})  # fmt: skip
    found = discover(spec, time_budget=120)
    x, y, px, py = sympy.symbols(NAMES)
    truth = (px**2 + py**2) / 2 - 1 / sympy.sqrt(x**2 + y**2)
    assert found.recovered is True, (found.formula_text, found.recovery)
    assert sympy.simplify(found.formulas[0] - truth) == 0
    assert found.metrics["rollout_traj_rmse"] < 1e-6


def test_physkan_train_knows_the_hamiltonian_objective() -> None:
    """`physkan train` trains an H network with the symplectic loss (objective in the train layer)."""
    from click.testing import CliRunner

    from physkan.cli import cli

    result = CliRunner().invoke(cli, ["train", "--problem", "kepler-hamiltonian", "--max-steps", "2"])
    assert result.exit_code == 0, result.output
    assert "final loss" in result.output
