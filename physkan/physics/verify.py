"""Verification of discovered physics: rollouts of Lagrangians and Hamiltonians, symbolic
conservation checks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sympy
import torch
from torch import Tensor

from physkan.symbolic.parse import numpy_modules

from .dynamics import rollout_error
from .hamiltonian import HamiltonianFn, hamiltonian_rhs
from .lagrangian import LagrangianFn, lagrangian_energy, lagrangian_rhs

__all__ = ["conserved_quantities_check", "verify_hamiltonian_rollout", "verify_lagrangian_rollout"]


def verify_hamiltonian_rollout(
    H_true: HamiltonianFn,
    H_found: HamiltonianFn,
    z0: Tensor,
    t: Tensor,
    *,
    method: str = "dopri5",
    rtol: float = 1e-8,
    atol: float = 1e-9,
) -> dict:
    """Roll out Hamilton's equations of the true and the found H from the same states.

    Args:
        H_true, H_found: Hamiltonians ``(N, 2n) -> (N,)``.
        z0: ``(B, 2n)`` initial states ``[q, p]``; t: ``(T,)`` output times.
        method, rtol, atol: torchdiffeq settings.

    Returns:
        dict (see :func:`physkan.physics.dynamics.rollout_error`): ``traj_rmse``,
        ``max_abs``, ``final_rmse``, ``diverged``, and ``energy_drift`` /
        ``energy_drift_rel``: drift of the *true* H along the found trajectory.
    """
    return rollout_error(
        hamiltonian_rhs(H_true), hamiltonian_rhs(H_found), z0, t,
        energy=lambda z: H_true(z).reshape(-1) * torch.ones(z.shape[0], dtype=z.dtype),
        method=method, rtol=rtol, atol=atol,
    )  # fmt: skip


def verify_lagrangian_rollout(
    L_true: LagrangianFn,
    L_found: LagrangianFn,
    z0: Tensor,
    t: Tensor,
    *,
    ridge: float = 0.0,
    method: str = "dopri5",
    rtol: float = 1e-8,
    atol: float = 1e-9,
) -> dict:
    """Roll out the true and the found Lagrangian from the same states and compare.

    Args:
        L_true, L_found: Lagrangians ``(N, 2n) -> (N,)``.
        z0: ``(B, 2n)`` initial states ``[q, q_dot]``.
        t: ``(T,)`` output times.
        ridge: Hessian regularisation for the *found* Lagrangian.
        method, rtol, atol: torchdiffeq settings.

    Returns:
        dict of floats (see :func:`physkan.physics.dynamics.rollout_error`): ``traj_rmse``,
        ``max_abs``, ``final_rmse``, ``diverged``, and ``energy_drift`` /
        ``energy_drift_rel``: drift of the *true* energy ``E = q_dot . dL/dq_dot - L``
        along the found trajectory (0 for a perfect discovery, up to integrator error).
    """
    return rollout_error(
        lagrangian_rhs(L_true),
        lagrangian_rhs(L_found, ridge=ridge),
        z0,
        t,
        energy=lambda z: lagrangian_energy(L_true, z),
        method=method,
        rtol=rtol,
        atol=atol,
    )


def _is_symbolic_zero(expr: sympy.Expr) -> tuple[bool | None, sympy.Expr]:
    """(True if ``expr`` simplifies to 0, False if provably nonzero, None if undecided; simplified)."""
    e = expr
    try:
        e = sympy.expand(expr)
        if e == 0:
            return True, e
        e = sympy.simplify(e)
        if e == 0:
            return True, e
        z = e.is_zero
        return (None if z is None else bool(z)), e
    except Exception:  # pragma: no cover - sympy internals
        return None, e


def conserved_quantities_check(
    H_exprs: Sequence[sympy.Expr],
    dynamics: Sequence[sympy.Expr],
    state: Sequence[sympy.Symbol],
    ranges: Sequence[tuple[float, float]],
    *,
    n_points: int = 64,
    seed: int = 0,
    tol: float = 1e-8,
    rank_tol: float = 1e-6,
) -> dict:
    """Check that each ``H`` satisfies ``grad H . f = 0`` and that the set is independent.

    Args:
        H_exprs: candidate conserved quantities (sympy, in the ``state`` symbols).
        dynamics: ``dz/dt`` components ``f_j(z)``, one per state symbol.
        state: the state symbols ``z_1..z_d``.
        ranges: ``d`` ``(lo, hi)`` pairs for the numeric checks.
        n_points: random points for the numeric residual and rank checks.
        seed: RNG seed of the points.
        tol: largest accepted normalised numeric residual
            ``|grad H . f| / (|grad H| |f|)`` (used when sympy cannot decide).
        rank_tol: relative singular-value threshold for the rank.

    Returns:
        dict with ``ok`` (all conserved and independent), ``residuals``: a list with, per
        quantity, ``expr`` (str), ``residual`` (the simplified ``grad H . f`` as str),
        ``symbolic_zero`` (True / False / None if undecided), ``numeric_max_abs`` and
        ``numeric_max_rel`` (max over points), ``conserved`` (bool); ``rank`` (max over
        points of the rank of the ``(m, d)`` Jacobian of the set), ``n_quantities`` and
        ``independent`` (``rank == n_quantities``).
    """
    state = list(state)
    if len(dynamics) != len(state) or len(ranges) != len(state):
        raise ValueError("dynamics, state and ranges must have the same length")
    rng = np.random.default_rng(seed)
    lo = np.array([float(a) for a, _ in ranges])
    hi = np.array([float(b) for _, b in ranges])
    pts = lo + (hi - lo) * rng.random((n_points, len(state)))
    cols = [pts[:, j] for j in range(len(state))]

    def num(exprs: list[sympy.Expr]) -> np.ndarray:
        fn = sympy.lambdify(state, exprs, modules=numpy_modules())
        vals = fn(*cols)
        return np.stack([np.broadcast_to(np.asarray(v, dtype=float), (n_points,)) for v in vals])

    f_num = num(list(dynamics)).T  # (P, d)
    f_norm = np.linalg.norm(f_num, axis=1)
    residuals = []
    jac_rows = []
    for H in H_exprs:
        H = sympy.sympify(H)
        grad = [sympy.diff(H, s) for s in state]
        res = sum((g * fj for g, fj in zip(grad, dynamics, strict=True)), sympy.Integer(0))
        sym, res_simpl = _is_symbolic_zero(res)
        g_num = num(grad).T  # (P, d)
        jac_rows.append(g_num)
        r_num = np.abs(np.sum(g_num * f_num, axis=1))
        denom = np.linalg.norm(g_num, axis=1) * f_norm
        rel = np.where(denom > 0, r_num / np.where(denom > 0, denom, 1.0), r_num)
        num_ok = bool(np.all(np.isfinite(rel)) and rel.max(initial=0.0) <= tol)
        conserved = bool(sym) if sym is not None else num_ok
        residuals.append(
            {
                "expr": str(H),
                "residual": str(res_simpl),
                "symbolic_zero": sym,
                "numeric_max_abs": float(r_num.max(initial=0.0)),
                "numeric_max_rel": float(rel.max(initial=0.0)),
                "conserved": conserved,
            }
        )
    m = len(H_exprs)
    rank = 0
    if m:
        jac = np.stack(jac_rows, axis=1)  # (P, m, d)
        for J in jac:
            if not np.all(np.isfinite(J)):
                continue
            s = np.linalg.svd(J, compute_uv=False)
            if s.size and s[0] > 0:
                rank = max(rank, int(np.sum(s > rank_tol * s[0])))
    independent = rank == m
    return {
        "ok": bool(all(r["conserved"] for r in residuals) and independent),
        "residuals": residuals,
        "rank": rank,
        "n_quantities": m,
        "independent": independent,
    }
