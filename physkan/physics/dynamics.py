"""Trajectory integration (torchdiffeq, imported on first use) and rollout comparison of two
vector fields."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["autonomous", "integrate", "rollout_error"]

VectorField = Callable[[Tensor, Tensor], Tensor]


def autonomous(f: Callable[[Tensor], Tensor]) -> VectorField:
    """Wrap ``f(z) -> dz/dt`` as ``rhs(t, z)`` for :func:`integrate` / ``odeint``."""

    def rhs(t: Tensor, z: Tensor) -> Tensor:
        return f(z)

    return rhs


def integrate(
    rhs: VectorField,
    z0: Tensor,
    t: Tensor,
    *,
    method: str = "dopri5",
    rtol: float = 1e-8,
    atol: float = 1e-9,
    options: dict | None = None,
) -> Tensor:
    """Integrate ``dz/dt = rhs(t, z)`` with ``torchdiffeq.odeint``.

    Args:
        rhs: vector field ``rhs(t, z)``, ``z`` of shape ``(B, d)`` -> ``(B, d)``
            (e.g. :func:`physkan.physics.lagrangian_rhs` or ``autonomous(f)``).
        z0: ``(B, d)`` initial states (or ``(d,)``).
        t: ``(T,)`` increasing output times; cast to ``z0``'s dtype/device.
        method: any torchdiffeq method (``"dopri5"``, ``"rk4"``, ...).
        rtol, atol: tolerances of adaptive methods.
        options: extra solver options (e.g. ``{"step_size": 0.01}`` for fixed-step methods).

    Returns:
        ``(T, B, d)`` trajectory (``(T, d)`` for 1-D ``z0``); ``out[0] == z0``.
    """
    # imported here: torchdiffeq imports scipy.integrate (~0.6 s), needless without rollouts
    from torchdiffeq import odeint

    t = torch.as_tensor(t).to(dtype=z0.dtype, device=z0.device)
    return odeint(rhs, z0, t, method=method, rtol=rtol, atol=atol, options=options)


def rollout_error(
    rhs_true: VectorField,
    rhs_found: VectorField,
    z0: Tensor,
    t: Tensor,
    *,
    energy: Callable[[Tensor], Tensor] | None = None,
    method: str = "dopri5",
    rtol: float = 1e-8,
    atol: float = 1e-9,
    options: dict | None = None,
    return_trajectories: bool = False,
) -> dict:
    """Integrate both vector fields from the same initial states and compare.

    Args:
        rhs_true, rhs_found: vector fields ``rhs(t, z)``.
        z0: ``(B, d)`` initial states.
        t: ``(T,)`` times.
        energy: optional ``(N, d) -> (N,)`` energy function (e.g. the true energy); if
            given, the drift of that energy along the *found* trajectory is reported.
        method, rtol, atol, options: solver settings (see :func:`integrate`).
        return_trajectories: also return ``traj_true`` and ``traj_found`` ``(T, B, d)``.

    Returns:
        dict of floats: ``traj_rmse`` (RMSE over all times, samples, coordinates),
        ``max_abs`` (max absolute deviation), ``final_rmse`` (RMSE at the last time),
        ``diverged`` (bool: the found rollout failed or became non-finite; errors are then
        ``inf``), and if ``energy`` is given ``energy_drift`` (max over times and samples of
        ``|E(z(t)) - E(z(0))|``) and ``energy_drift_rel`` (divided by ``max |E(z(0))|``,
        floored at 1e-12). ``error`` holds the solver message when it failed.
    """
    with torch.no_grad():
        true = integrate(rhs_true, z0, t, method=method, rtol=rtol, atol=atol, options=options)
    out: dict = {"diverged": False}
    try:
        with torch.no_grad():
            found = integrate(
                rhs_found, z0, t, method=method, rtol=rtol, atol=atol, options=options
            )
    except (AssertionError, RuntimeError, ValueError) as exc:  # torchdiffeq underflow etc.
        found = None
        out["error"] = f"{type(exc).__name__}: {exc}"
    if found is None or not bool(torch.isfinite(found).all()):
        out.update(diverged=True, traj_rmse=math.inf, max_abs=math.inf, final_rmse=math.inf)
        if energy is not None:
            out.update(energy_drift=math.inf, energy_drift_rel=math.inf)
        if return_trajectories:
            out.update(traj_true=true, traj_found=found)
        return out
    diff = (found - true).detach()
    out["traj_rmse"] = float(torch.sqrt(torch.mean(diff**2)))
    out["max_abs"] = float(diff.abs().max())
    out["final_rmse"] = float(torch.sqrt(torch.mean(diff[-1] ** 2)))
    if energy is not None:
        T = found.shape[0]
        flat = found.reshape(-1, found.shape[-1])
        E = energy(flat).reshape(T, -1).detach()
        drift = (E - E[0:1]).abs().max()
        scale = E[0].abs().max().clamp_min(1e-12)
        out["energy_drift"] = float(drift)
        out["energy_drift_rel"] = float(drift / scale)
    if return_trajectories:
        out.update(traj_true=true, traj_found=found)
    return out
