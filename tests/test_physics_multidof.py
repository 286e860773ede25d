"""Lagrangians with several degrees of freedom (issue 16, part B): the n-DOF Euler–Lagrange
accelerations, the structured blocks' columns, the n-DOF gauge/canonical form, and the
discovery of the coupled oscillators, the charged particle and the double pendulum."""

from __future__ import annotations

import pytest
import sympy
import torch

from physkan.physics import lagrangian_accelerations, lagrangian_derivatives, lagrangian_from_sympy
from physkan.physics.gauge import canonical_lagrangian
from physkan.physics.structured import Block, U, el_columns, spline_family, symbolic_family

DP = "q1_dot**2 + q2_dot**2/2 + q1_dot*q2_dot*cos(q1 - q2) + 2*cos(q1) + cos(q2)"


def _states(n: int, rows: int = 64, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 2 * torch.rand(rows, 2 * n, generator=gen, dtype=torch.float64) - 1


def _dp_hand(state: torch.Tensor, gravity: float = 1.0) -> torch.Tensor:
    """Double pendulum (m = l = 1, g = ``gravity``), solved by hand from its two EL equations."""
    q1, q2, v1, v2 = state.unbind(1)
    d = q1 - q2
    r1 = -(v2**2) * torch.sin(d) - 2 * gravity * torch.sin(q1)
    r2 = v1**2 * torch.sin(d) - gravity * torch.sin(q2)
    det = 2 - torch.cos(d) ** 2
    return torch.stack([(r1 - torch.cos(d) * r2) / det, (2 * r2 - torch.cos(d) * r1) / det], 1)


def test_double_pendulum_accelerations_match_hand_derivation() -> None:
    state = _states(2)
    L = lagrangian_from_sympy(DP, ["q1", "q2"])
    got = lagrangian_accelerations(L, state, create_graph=False)
    assert got.dtype == torch.float64
    assert torch.allclose(got, _dp_hand(state), rtol=0, atol=1e-10)


def test_accelerations_differentiable_in_parameters_for_two_dof() -> None:
    g = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)

    def L(x: torch.Tensor) -> torch.Tensor:
        q1, q2, v1, v2 = x.unbind(1)
        return v1**2 + v2**2 / 2 + v1 * v2 * torch.cos(q1 - q2) + g * (2 * torch.cos(q1) + torch.cos(q2))

    state = _states(2, 16)
    acc = lagrangian_accelerations(L, state, create_graph=True)
    (dg,) = torch.autograd.grad(acc.sum(), g)
    # q_ddot = a(q, q_dot) + g b(q) (the mass matrix does not depend on g): d/dg = b = hand(g=1) - hand(g=0)
    b = _dp_hand(state) - _dp_hand(state, gravity=0.0)
    assert torch.allclose(dg, b.sum(), atol=1e-10)


def _blocks(n: int, state: torch.Tensor) -> list[Block]:
    w0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    wd = torch.tensor([1.0, -1.0], dtype=torch.float64)
    spline, width = spline_family(state[:, :n] @ wd, grid=6)
    return [
        Block("kinetic", 0, 1, wd, symbolic_family([sympy.cos(U), U**2]), [sympy.cos(U), U**2]),
        Block("kinetic", 1, 1, w0, spline, [sympy.Symbol(f"B{k}") for k in range(width)]),
        Block("gauge", 1, 1, w0, symbolic_family([U, sympy.sin(U)]), [U, sympy.sin(U)]),
        Block("potential", 0, 0, wd, spline, [sympy.Symbol(f"B{k}") for k in range(width)]),
    ]


def test_block_columns_equal_autograd_euler_lagrange() -> None:
    """Σ c_k EL(φ_k) from the closed-form columns equals autograd's d/dt ∂L/∂q̇ − ∂L/∂q."""
    n = 2
    state, qddot = _states(n, 40, seed=1), _states(1, 40, seed=2).reshape(40, 2)
    blocks = _blocks(n, state)
    gen = torch.Generator().manual_seed(3)
    coefs = [torch.randn(b.width, generator=gen, dtype=torch.float64) for b in blocks]

    def L(x: torch.Tensor) -> torch.Tensor:
        q, v = x[:, :n], x[:, n:]
        out = torch.zeros(x.shape[0], dtype=x.dtype)
        for b, c in zip(blocks, coefs):
            fac = {"kinetic": v[:, b.i] * v[:, b.j] if b.i != b.j else v[:, b.i] ** 2 / 2,
                   "gauge": v[:, b.i], "potential": torch.ones_like(out)}[b.kind]  # fmt: skip
            out = out + fac * (b.family(b.argument(q))[0] @ c)
        return out

    d = lagrangian_derivatives(L, state, create_graph=False)
    el = torch.einsum("nij,nj->ni", d["H_vv"], qddot) + torch.einsum("nij,nj->ni", d["H_vq"], state[:, n:]) - d["dL_dq"]
    cols = sum(el_columns(b, state, qddot) @ c for b, c in zip(blocks, coefs))
    assert torch.allclose(cols, el.reshape(-1), atol=1e-10)


def _sym(text: str, names: list[str]) -> sympy.Expr:
    return sympy.sympify(text, locals={s: sympy.Symbol(s) for s in names})


XY = ["x", "y", "x_dot", "y_dot"]


def test_canonical_form_magnetic_gauges_agree() -> None:
    symmetric = _sym("(x_dot**2 + y_dot**2)/2 + (x*y_dot - y*x_dot)/2", XY)
    landau = _sym("3*(x_dot**2 + y_dot**2)/2 + 3*x*y_dot + 7 + 3*x_dot + 6*(x*y_dot + y*x_dot)", XY)
    a, b = canonical_lagrangian(symmetric, ["x", "y"]), canonical_lagrangian(landau, ["x", "y"])
    assert sympy.simplify(a - b) == 0
    assert sympy.simplify(a - symmetric) == 0


def test_canonical_form_n_dof_scale_and_nonlinear_total_derivative() -> None:
    names = ["q1", "q2", "q1_dot", "q2_dot"]
    truth = _sym(DP, names)
    # 2 L + 5 + d/dt(q2 sin q1) = 2 L + 5 + q2 cos(q1) q1_dot + sin(q1) q2_dot
    messy = 2 * truth + 5 + _sym("q2*cos(q1)*q1_dot + sin(q1)*q2_dot", names)
    found = canonical_lagrangian(messy, ["q1", "q2"])
    assert sympy.simplify(found - truth / 2) == 0  # scale: the first constant mass entry -> 1


def test_canonical_form_singular_or_position_dependent_mass_does_not_crash() -> None:
    names = ["r", "t", "r_dot", "t_dot"]
    polar = _sym("(r_dot**2 + r**2*t_dot**2)/2 - r**2/2", names)
    assert sympy.simplify(canonical_lagrangian(3 * polar, ["r", "t"]) - polar) == 0
    no_kinetic = _sym("r*t_dot - t*r_dot", names)  # singular (zero) mass matrix: scale left alone
    assert sympy.simplify(canonical_lagrangian(no_kinetic, ["r", "t"]) - no_kinetic) == 0


def test_structured_route_gives_up_on_a_non_quadratic_kinetic_term() -> None:
    """A 2-D relativistic particle is not ½q̇ᵀMq̇ + A·q̇ − V: the route says so (None), so
    discover_lagrangian falls back to its general KAN instead of returning a wrong formula."""
    from physkan.problems.datasets import make_dataset
    from physkan.problems.loader import problem_from_dict
    from physkan.strategies.lagrangian_nd import discover_lagrangian_nd

    spec = problem_from_dict({
        "name": "rel-2d", "type": "lagrangian",
        "system": {"coordinates": ["x", "y"], "lagrangian": "-sqrt(1 - x_dot**2 - y_dot**2) - x"},
        "data": {"n_train": 400, "n_test": 100, "ranges": {"x": [-1, 1], "y": [-1, 1], "x_dot": [-0.6, 0.6],
                                                             "y_dot": [-0.6, 0.6]}},
    })  # fmt: skip
    said: list[str] = []
    assert discover_lagrangian_nd(spec, make_dataset(spec), said.append) is None
    assert any("does not fit" in m for m in said), said


def _recover(name: str, noise: float = 0.0):
    from physkan.discover import discover
    from physkan.problems import load_problem

    spec = load_problem(name)
    if noise:
        spec = spec.model_copy(update={"data": spec.data.model_copy(update={"noise": noise})})
    return discover(spec)


@pytest.mark.slow
@pytest.mark.recovery
@pytest.mark.parametrize("name", ["coupled-oscillators", "charged-particle"])
def test_exact_lagrangian_recovered(name: str) -> None:
    result = _recover(name)
    assert result.recovered is True, (result.formulas, result.recovery)
    assert result.metrics["rollout_traj_rmse"] < 1e-8
    assert result.seconds < 60


@pytest.mark.slow
@pytest.mark.recovery
def test_coupled_oscillators_with_noise_constants_within_one_percent() -> None:
    result = _recover("coupled-oscillators", noise=1e-3)
    names = ["x1", "x2", "x1_dot", "x2_dot"]
    found = result.formulas[0]
    truth = _sym("(x1_dot**2 + x2_dot**2)/2 - (x1**2 + (x2 - x1)**2/2 + 2*x2**2)/2", names)
    syms = {s.name: s for s in found.free_symbols}
    got = sympy.Poly(found.subs({syms[n]: sympy.Symbol(n) for n in syms}), *[sympy.Symbol(n) for n in names])
    want = sympy.Poly(truth, *[sympy.Symbol(n) for n in names])
    assert set(got.monoms()) == set(want.monoms()), found
    for monom, c in want.terms():
        assert abs(float(got.coeff_monomial(monom)) - float(c)) <= 0.01 * abs(float(c)), found


@pytest.mark.slow
def test_double_pendulum_exact_and_rollout() -> None:
    from physkan.problems import load_problem
    from physkan.problems.datasets import make_dataset
    from physkan.strategies.lagrangian_check import rollout_metrics
    from physkan.strategies.lagrangian_nd import spline_model

    result = _recover("double-pendulum")
    assert result.recovered is True, (result.formulas, result.recovery)
    assert result.metrics["rollout_traj_rmse"] < 1e-8
    # the learned numeric model alone (before any symbol), t in [0, 5]
    spec = load_problem("double-pendulum")
    data = make_dataset(spec)
    model, _ = spline_model(data)
    assert rollout_metrics(spec, model, data, "", shrink=0.5)["traj_rmse"] <= 1e-3
