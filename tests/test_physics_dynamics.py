"""torchdiffeq integration, rollout errors and Lagrangian rollout verification."""

from __future__ import annotations

import math

import torch

from physkan.physics import (
    autonomous,
    harmonic_oscillator_2d,
    integrate,
    lagrangian_energy,
    lagrangian_rhs,
    rollout_error,
    verify_lagrangian_rollout,
)

DT = torch.float64


def pendulum(s: torch.Tensor) -> torch.Tensor:
    return 0.5 * s[:, 1] ** 2 + torch.cos(s[:, 0])


def test_integrate_matches_analytic_oscillator() -> None:
    z0 = torch.tensor([[1.0, 0.0, 0.0, 0.5], [0.2, -0.3, 0.4, 0.1]], dtype=DT)
    t = torch.linspace(0, 2 * math.pi, 17, dtype=DT)
    traj = integrate(autonomous(harmonic_oscillator_2d), z0, t)
    assert traj.shape == (17, 2, 4)
    c, s = torch.cos(t)[:, None], torch.sin(t)[:, None]
    x = z0[:, 0] * c + z0[:, 2] * s
    px = -z0[:, 0] * s + z0[:, 2] * c
    torch.testing.assert_close(traj[:, :, 0], x, rtol=0, atol=1e-7)
    torch.testing.assert_close(traj[:, :, 2], px, rtol=0, atol=1e-7)
    torch.testing.assert_close(traj[-1], z0, rtol=0, atol=1e-7)


def test_rollout_error_small_for_true_law_and_energy_conserved() -> None:
    z0 = torch.tensor([[0.5, 0.0], [1.0, 0.5], [-2.0, 0.1]], dtype=DT)
    t = torch.linspace(0, 5, 21, dtype=DT)
    rhs = lagrangian_rhs(pendulum)
    res = rollout_error(rhs, rhs, z0, t, energy=lambda z: lagrangian_energy(pendulum, z))
    assert res["traj_rmse"] == 0.0 and res["max_abs"] == 0.0 and not res["diverged"]
    assert res["energy_drift"] < 1e-7


def test_verify_lagrangian_rollout_true_vs_wrong() -> None:
    z0 = torch.tensor([[0.5, 0.0], [1.0, 0.5]], dtype=DT)
    t = torch.linspace(0, 4, 17, dtype=DT)
    same = lambda s: 2.0 * pendulum(s) + 3.0  # noqa: E731  equivalent Lagrangian
    good = verify_lagrangian_rollout(pendulum, same, z0, t)
    assert good["traj_rmse"] < 1e-7 and good["energy_drift_rel"] < 1e-6
    small_angle = lambda s: 0.5 * s[:, 1] ** 2 - 0.5 * s[:, 0] ** 2  # noqa: E731
    bad = verify_lagrangian_rollout(pendulum, small_angle, z0, t)
    assert bad["traj_rmse"] > 1e-2 and bad["max_abs"] > bad["traj_rmse"]
    assert bad["energy_drift_rel"] > 1e-2


def test_rollout_error_reports_divergence() -> None:
    z0 = torch.tensor([[1.0]], dtype=DT)
    t = torch.linspace(0, 2, 5, dtype=DT)
    res = rollout_error(
        autonomous(lambda z: -z), autonomous(lambda z: z**2), z0, t, energy=lambda z: z[:, 0]
    )
    assert res["diverged"] and math.isinf(res["traj_rmse"]) and math.isinf(res["energy_drift"])


def test_gradient_through_solver() -> None:
    k = torch.tensor(1.0, dtype=DT, requires_grad=True)
    L = lambda s: 0.5 * s[:, 1] ** 2 - 0.5 * k * s[:, 0] ** 2  # noqa: E731
    z0 = torch.tensor([[1.0, 0.0]], dtype=DT)
    t = torch.tensor([0.0, 1.0], dtype=DT)
    traj = integrate(
        lagrangian_rhs(L, create_graph=True), z0, t, method="rk4", options={"step_size": 0.01}
    )
    (g,) = torch.autograd.grad(traj[-1, 0, 0], k)
    # q(1) = cos(sqrt(k)); dq/dk at k=1 = -sin(1)/2
    assert abs(float(g) + math.sin(1.0) / 2) < 1e-6
