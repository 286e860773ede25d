"""Simulate trajectories of a true Lagrangian or Hamiltonian and write them as a CSV file.

:func:`simulate_trajectories` draws initial states uniformly in a box, integrates them with
``torchdiffeq`` (float64, autograd vector fields: Euler-Lagrange
``q_ddot = M^-1 (dL/dq - (d2L/dq_dot dq) q_dot)`` or Hamilton's equations) and keeps only
trajectories that stay well inside the sampled region and conserve their energy: each
state component must stay within :data:`BOUND_FACTOR` times the largest magnitude of its
sampling range (this rejects escapes and near-collisions, e.g. Kepler orbits through
``r = 0``), and the relative energy drift must stay below ``energy_tol``.
:func:`write_trajectory_csv` writes ``t, <columns>..., trajectory`` atomically, with
optional Gaussian noise of standard deviation ``noise * std(column)`` per written column.
The file format is the one :mod:`physkan.problems.trajectories` reads.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy
import torch
from torch import Tensor

from physkan._fs import atomic_file
from physkan.budget import current_budget
from physkan.errors import UserError
from physkan.symbolic.parse import lambdify_torch

from .data import lagrangian_from_sympy, sample_box
from .dynamics import integrate
from .lagrangian import lagrangian_energy, lagrangian_rhs

__all__ = [
    "BOUND_FACTOR",
    "Simulation",
    "SimulationError",
    "hamiltonian_system",
    "lagrangian_system",
    "simulate_trajectories",
    "write_trajectory_csv",
]

#: a kept trajectory stays within this factor of its sampling range's largest magnitude.
BOUND_FACTOR = 2.0

VectorField = Callable[[Tensor, Tensor], Tensor]
Energy = Callable[[Tensor], Tensor]


class SimulationError(UserError, RuntimeError):
    """Too few initial states gave bounded, energy-conserving trajectories (narrow the ranges)."""


@dataclass
class Simulation:
    """Simulated trajectories: ``t (T,)``, ``states (T, B, d)``, ``energy_drift`` (max relative)."""

    t: Tensor
    states: Tensor
    energy_drift: float
    rejected: int


def hamiltonian_system(H: sympy.Expr, coordinates: Sequence[str], momenta: Sequence[str]) -> tuple[VectorField, Energy]:
    """Hamilton's equations ``dq/dt = dH/dp, dp/dt = -dH/dq`` of a formula (exact, by sympy)
    and the energy ``H``; states ``z = [q, p]`` ``(B, 2n)``."""
    names = [*coordinates, *momenta]
    qs, ps = (sympy.Symbol(n) for n in coordinates), (sympy.Symbol(n) for n in momenta)
    exprs = [sympy.diff(H, p) for p in ps] + [-sympy.diff(H, q) for q in qs]
    fields = [lambdify_torch(e, names) for e in exprs]
    energy_fn = lambdify_torch(H, names)

    def rhs(t: Tensor, z: Tensor) -> Tensor:
        ones = torch.ones(z.shape[:-1], dtype=z.dtype)
        return torch.stack([f(z) * ones for f in fields], dim=-1)

    def energy(z: Tensor) -> Tensor:
        return energy_fn(z) * torch.ones(z.shape[0], dtype=z.dtype)

    return rhs, energy


def lagrangian_system(L: sympy.Expr, coordinates: Sequence[str]) -> tuple[VectorField, Energy]:
    """Euler-Lagrange vector field (autograd, :func:`~physkan.physics.lagrangian_rhs`) and
    energy ``q_dot . dL/dq_dot - L`` of a formula; states ``z = [q, q_dot]`` ``(B, 2n)``."""
    fn = lagrangian_from_sympy(L, list(coordinates))
    return lagrangian_rhs(fn), lambda z: lagrangian_energy(fn, z)


def _accept(traj: Tensor, bounds: Tensor, energy: Energy, energy_tol: float) -> Tensor:
    """``(B,)`` mask of trajectories ``(T, B, d)`` inside ``bounds (d,)`` with small drift."""
    finite = torch.isfinite(traj).all(dim=(0, 2))
    inside = (traj.abs() <= bounds).all(dim=(0, 2)) & finite
    T, B, d = traj.shape
    E = energy(torch.nan_to_num(traj).reshape(-1, d)).reshape(T, B).detach()
    drift = (E - E[:1]).abs().amax(0) / E[0].abs().clamp_min(1.0)
    return inside & (drift <= energy_tol)


def simulate_trajectories(
    rhs: VectorField,
    energy: Energy,
    ranges: Sequence[tuple[float, float]],
    *,
    n_traj: int = 10,
    t_max: float = 10.0,
    dt: float = 0.01,
    seed: int = 0,
    energy_tol: float = 1e-6,
    max_rounds: int = 8,
) -> Simulation:
    """Integrate ``n_traj`` accepted trajectories from initial states in ``ranges``.

    Args:
        rhs: vector field ``rhs(t, z)`` on ``(B, d)`` states (e.g.
            :func:`~physkan.physics.lagrangian_rhs`, :func:`~physkan.physics.hamiltonian.hamiltonian_rhs`).
        energy: ``(N, d) -> (N,)`` conserved energy of the true system.
        ranges: ``d`` sampling boxes ``(lo, hi)`` of the initial state components.
        n_traj: trajectories to return; t_max, dt: output times ``0, dt, ..., t_max``.
        seed: seed of the initial states (round ``r`` uses ``seed + r``).
        energy_tol: largest accepted ``max_t |E(t) - E(0)| / max(|E(0)|, 1)``.
        max_rounds: rounds of ``3 * n_traj`` candidates before giving up.

    Returns:
        :class:`Simulation` with ``states (T, n_traj, d)``.

    Raises:
        SimulationError: fewer than ``n_traj`` candidates were accepted.
        ValueError: non-positive ``dt``/``t_max``/``n_traj``.
    """
    if not (dt > 0 and t_max > 0 and n_traj >= 1):
        raise ValueError(f"need dt > 0, t_max > 0 and n_traj >= 1; got {dt}, {t_max}, {n_traj}")
    n_t = int(round(t_max / dt)) + 1
    t = torch.arange(n_t, dtype=torch.float64) * dt
    bounds = BOUND_FACTOR * torch.tensor([max(abs(a), abs(b)) for a, b in ranges], dtype=torch.float64)
    kept: list[Tensor] = []
    rejected, budget = 0, current_budget()
    for round_ in range(max_rounds):
        if sum(k.shape[0] for k in kept) >= n_traj or (round_ and budget.check()):
            break
        z0 = sample_box(ranges, 3 * n_traj, seed + round_)
        coarse = integrate(rhs, z0, t[:: max(1, n_t // 200)], method="rk4",
                           options={"step_size": dt})  # fmt: skip
        ok = _accept(coarse, bounds, energy, 1e-3)
        if not ok.any():
            rejected += len(z0)
            continue
        fine = integrate(rhs, z0[ok], t, method="dopri5", rtol=1e-10, atol=1e-12)
        good = _accept(fine, bounds, energy, energy_tol)
        rejected += len(z0) - int(good.sum())
        kept.append(fine[:, good].transpose(0, 1))
    states = torch.cat(kept, 0)[:n_traj].transpose(0, 1) if kept else torch.empty(n_t, 0, len(ranges))
    if states.shape[1] < n_traj:
        raise SimulationError(
            f"only {states.shape[1]} of {n_traj} trajectories stayed bounded (within "
            f"{BOUND_FACTOR:g}x the sampling ranges) with energy drift <= {energy_tol:g}; "
            "narrow [data].ranges or shorten t_max"
        )
    T, B, d = states.shape
    E = energy(states.reshape(-1, d)).reshape(T, B).detach()
    drift = float(((E - E[:1]).abs().amax(0) / E[0].abs().clamp_min(1.0)).max())
    return Simulation(t=t, states=states.detach(), energy_drift=drift, rejected=rejected)


def write_trajectory_csv(
    path: str | Path,
    t: Tensor,
    states: Tensor,
    names: Sequence[str],
    *,
    noise: float = 0.0,
    seed: int = 0,
) -> Path:
    """Write ``t (T,)`` and ``states (T, B, d)`` (columns ``names``) as a trajectory CSV.

    Rows are ``t, names..., trajectory`` (trajectory ids ``0..B-1``), full float64
    precision. ``noise > 0`` adds ``noise * std(column) * N(0, 1)`` to each state column
    (the std over all trajectories; seeded by ``seed``); ``t`` stays exact.
    """
    T, B, d = states.shape
    if len(names) != d:
        raise ValueError(f"{len(names)} column names for {d} state components")
    data = states.detach().cpu().numpy().copy()
    if noise > 0:
        rng = np.random.default_rng(seed + 7919)
        std = data.reshape(-1, d).std(axis=0)
        data += noise * std * rng.standard_normal(data.shape)
    path = Path(path)
    with atomic_file(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["t", *names, "trajectory"])
        times = t.detach().cpu().numpy()
        for b in range(B):
            for i in range(T):
                writer.writerow([repr(float(times[i])), *(repr(float(v)) for v in data[i, b]), b])
    return path
