"""Euler-Lagrange accelerations by autograd: exact cases, gradients, singular Hessians."""

from __future__ import annotations

import pytest
import torch

from physkan.physics import (
    SingularHessianError,
    euler_lagrange_loss,
    lagrangian_accelerations,
    lagrangian_energy,
    lagrangian_from_sympy,
    lagrangian_rhs,
    sample_box,
)

DT = torch.float64


def val(x: torch.Tensor | float) -> float:
    """Python float of a (possibly graph-attached) scalar tensor."""
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


def test_pendulum_exact() -> None:
    L = lambda s: 0.5 * s[:, 1] ** 2 + torch.cos(s[:, 0])  # noqa: E731
    state = sample_box([(-3.0, 3.0), (-2.0, 2.0)], 64, seed=1)
    qdd = lagrangian_accelerations(L, state)
    assert qdd.shape == (64, 1)
    assert qdd.dtype == DT
    torch.testing.assert_close(qdd[:, 0], -torch.sin(state[:, 0]), rtol=0, atol=1e-13)


def test_output_shape_n1_accepted_and_sympy_lagrangian() -> None:
    L = lagrangian_from_sympy("q_dot**2/2 + cos(q)", ["q"])
    L_col = lambda s: L(s)[:, None]  # noqa: E731  (N, 1) output
    state = sample_box([(-3.0, 3.0), (-2.0, 2.0)], 16, seed=2)
    torch.testing.assert_close(
        lagrangian_accelerations(L_col, state)[:, 0], -torch.sin(state[:, 0]), rtol=0, atol=1e-13
    )


def test_relativistic_particle_in_uniform_field() -> None:
    L = lambda s: -torch.sqrt(1 - s[:, 1] ** 2) + s[:, 0]  # noqa: E731
    state = sample_box([(-1.0, 1.0), (-0.9, 0.9)], 64, seed=3)
    qdd = lagrangian_accelerations(L, state)
    torch.testing.assert_close(qdd[:, 0], (1 - state[:, 1] ** 2) ** 1.5, rtol=1e-12, atol=1e-13)


def test_two_coordinates_mixed_kinetic_term_and_coupled_potential() -> None:
    M = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=DT)

    def L(s: torch.Tensor) -> torch.Tensor:
        q1, q2, v1, v2 = s.unbind(-1)
        T = 0.5 * (M[0, 0] * v1**2 + 2 * M[0, 1] * v1 * v2 + M[1, 1] * v2**2)
        V = q1**4 / 4 - q1**2 / 2 + q2**2 / 2 + 0.3 * q1 * q2
        return T - V

    state = sample_box([(-1.5, 1.5)] * 2 + [(-1.0, 1.0)] * 2, 50, seed=4)
    q1, q2 = state[:, 0], state[:, 1]
    gradV = torch.stack([q1**3 - q1 + 0.3 * q2, q2 + 0.3 * q1], dim=-1)
    expected = -torch.linalg.solve(M, gradV.T).T
    torch.testing.assert_close(lagrangian_accelerations(L, state), expected, rtol=0, atol=1e-12)


def test_polar_coordinates_position_dependent_mass() -> None:
    # central force: L = (r_dot^2 + r^2 th_dot^2)/2 - V(r), V = -1/r
    def L(s: torch.Tensor) -> torch.Tensor:
        r, _th, rd, thd = s.unbind(-1)
        return 0.5 * (rd**2 + r**2 * thd**2) + 1.0 / r

    state = sample_box([(0.5, 2.0), (-3.0, 3.0), (-1.0, 1.0), (-1.0, 1.0)], 40, seed=5)
    r, _, rd, thd = state.unbind(-1)
    expected = torch.stack([r * thd**2 - 1.0 / r**2, -2.0 * rd * thd / r], dim=-1)
    torch.testing.assert_close(lagrangian_accelerations(L, state), expected, rtol=0, atol=1e-12)


class SmallL(torch.nn.Module):
    """0.5 q_dot^2 + 0.1 * MLP(q, q_dot): parameter-dependent, non-singular Hessian."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)
        ).to(DT)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return 0.5 * s[:, 1] ** 2 + 0.1 * self.net(s)[:, 0]


def test_euler_lagrange_loss_gradient_matches_finite_differences() -> None:
    model = SmallL()
    state = sample_box([(-2.0, 2.0), (-1.0, 1.0)], 32, seed=6)
    target = -torch.sin(state[:, :1])
    loss = euler_lagrange_loss(model, state, target)
    params = list(model.parameters())
    # the last bias shifts L by a constant: no effect on q_ddot, zero gradient
    grads = torch.autograd.grad(loss, params, allow_unused=True, materialize_grads=True)
    assert all(torch.isfinite(g).all() for g in grads)
    assert sum(val(g.abs().sum()) for g in grads) > 0
    h = 1e-6
    for p, g in zip(params, grads, strict=True):
        for idx in [(0,) * p.dim(), tuple(s - 1 for s in p.shape)]:
            with torch.no_grad():
                old = p[idx].item()
                p[idx] = old + h
                lp = val(euler_lagrange_loss(model, state, target))
                p[idx] = old - h
                lm = val(euler_lagrange_loss(model, state, target))
                p[idx] = old
            fd = (lp - lm) / (2 * h)
            assert abs(fd - val(g[idx])) <= 1e-6 + 1e-4 * abs(fd), (idx, fd, val(g[idx]))


def test_create_graph_false_is_detached() -> None:
    model = SmallL()
    state = sample_box([(-2.0, 2.0), (-1.0, 1.0)], 8, seed=7)
    out = lagrangian_accelerations(model, state, create_graph=False)
    assert not out.requires_grad
    torch.testing.assert_close(out, lagrangian_accelerations(model, state).detach())


def test_singular_hessian_raises_clear_error() -> None:
    L = lambda s: s[:, 0]  # noqa: E731  no velocity dependence
    state = sample_box([(-1.0, 1.0), (-1.0, 1.0)], 8, seed=8)
    with pytest.raises(SingularHessianError, match=r"8 of 8 samples") as info:
        lagrangian_accelerations(L, state)
    assert isinstance(info.value, ValueError)
    assert "ridge" in str(info.value)
    # regularised: q_ddot = (0 + ridge)^-1 * dL/dq = 1/ridge
    qdd = lagrangian_accelerations(L, state, ridge=0.5)
    torch.testing.assert_close(qdd, torch.full((8, 1), 2.0, dtype=DT))


def test_ill_conditioned_hessian_raises() -> None:
    def L(s: torch.Tensor) -> torch.Tensor:  # mass matrix diag(1, 1e-12)
        return 0.5 * s[:, 2] ** 2 + 0.5e-12 * s[:, 3] ** 2 - s[:, 0] ** 2

    state = sample_box([(-1.0, 1.0)] * 4, 4, seed=9)
    with pytest.raises(SingularHessianError, match="condition"):
        lagrangian_accelerations(L, state)
    assert torch.isfinite(lagrangian_accelerations(L, state, cond_max=None)).all()


def test_energy_and_rhs() -> None:
    L = lambda s: 0.5 * s[:, 1] ** 2 + torch.cos(s[:, 0])  # noqa: E731
    state = sample_box([(-3.0, 3.0), (-2.0, 2.0)], 10, seed=10)
    E = lagrangian_energy(L, state)
    torch.testing.assert_close(E, 0.5 * state[:, 1] ** 2 - torch.cos(state[:, 0]))
    f = lagrangian_rhs(L)
    dz = f(torch.tensor(0.0, dtype=DT), state)
    torch.testing.assert_close(dz, torch.stack([state[:, 1], -torch.sin(state[:, 0])], -1))
    assert f(torch.tensor(0.0, dtype=DT), state[0]).shape == (2,)
