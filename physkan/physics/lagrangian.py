"""Lagrangian mechanics by automatic differentiation.

Given any scalar Lagrangian ``L(q, q_dot)`` -- a plain torch function, a KAN, an MLP, any
``nn.Module`` -- this module computes the accelerations implied by the Euler-Lagrange
equations (KAN 2.0 paper, section 5.2, eq. 18)::

    q_ddot = (grad_qdot grad_qdot^T L)^-1 [grad_q L - (grad_q grad_qdot^T L) q_dot]

Conventions
-----------
* ``state`` has shape ``(N, 2n)`` and is laid out ``[q_1..q_n, q_dot_1..q_dot_n]``.
* ``L`` maps ``(N, 2n) -> (N,)`` or ``(N, 1)`` and must act *per sample* (row ``i`` of the
  output depends only on row ``i`` of the input), which holds for KANs and MLPs without
  batch normalisation.
* Units are whatever the data use: ``q`` in [length], ``q_dot`` in [length/time], ``L`` in
  [energy]; ``q_ddot`` comes back in [length/time^2].

Everything is computed with batched ``torch.autograd.grad`` calls (one per velocity
coordinate, ``n`` is small), which works with any callable, including modules whose
forward pass is not ``vmap``-compatible (e.g. spline grids with data-dependent indexing).
With ``create_graph=True`` the result is differentiable with respect to the parameters of
``L`` (third-order autograd through the model), so it can sit inside a training loss.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from physkan.errors import UserError

__all__ = [
    "SingularHessianError",
    "lagrangian_accelerations",
    "lagrangian_derivatives",
    "lagrangian_energy",
    "lagrangian_rhs",
]

LagrangianFn = Callable[[Tensor], Tensor]


class SingularHessianError(UserError, ValueError):
    """The velocity Hessian ``d^2 L / d q_dot^2`` (the mass matrix) cannot be inverted.

    Raised by :func:`lagrangian_accelerations` when, for at least one sample, the Hessian
    is singular or its condition number exceeds ``cond_max``. Pass ``ridge > 0`` to
    regularise, or initialise the model with a positive-definite kinetic term.
    """


def _evaluate_scalar(L: LagrangianFn, x: Tensor) -> Tensor:
    """Evaluate ``L`` on ``x`` (N, D) and return a (N,) tensor, checking the shape."""
    out = L(x)
    if not isinstance(out, Tensor):
        out = torch.as_tensor(out, dtype=x.dtype, device=x.device)
    n = x.shape[0]
    if out.dim() == 0:
        out = out.expand(n)
    elif out.dim() == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.shape != (n,):
        raise ValueError(
            f"the Lagrangian must map (N, D) -> (N,) or (N, 1); got output shape "
            f"{tuple(out.shape)} for input shape {tuple(x.shape)}"
        )
    return out


def _grad(out: Tensor, x: Tensor, *, create_graph: bool) -> Tensor:
    """Per-sample gradient ``d out_i / d x_i`` as (N, D); zeros if ``out`` is independent of x."""
    if not out.requires_grad:
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(
        out.sum(),
        x,
        create_graph=create_graph,
        retain_graph=True,
        allow_unused=True,
    )
    if g is None:
        return torch.zeros_like(x)
    return g


def _prepare_state(state: Tensor) -> tuple[Tensor, int]:
    if state.dim() != 2 or state.shape[1] % 2 != 0 or state.shape[1] == 0:
        raise ValueError(f"state must have shape (N, 2n) = [q, q_dot]; got {tuple(state.shape)}")
    n = state.shape[1] // 2
    if state.requires_grad:
        x = state  # keep the caller's graph (e.g. gradients w.r.t. the state itself)
    else:
        x = state.detach().requires_grad_(True)
    return x, n


def lagrangian_derivatives(
    L: LagrangianFn, state: Tensor, *, create_graph: bool = True
) -> dict[str, Tensor]:
    """First and second derivatives of ``L`` needed by the Euler-Lagrange equations.

    Args:
        L: Lagrangian, ``(N, 2n) -> (N,)`` or ``(N, 1)``.
        state: ``(N, 2n)`` = ``[q, q_dot]``.
        create_graph: keep the graph of the second derivatives (needed to backpropagate
            through them into the parameters of ``L``).

    Returns:
        dict with
        ``L`` (N,) the Lagrangian values,
        ``dL_dq`` (N, n), ``dL_dqdot`` (N, n) (the canonical momenta),
        ``H_vv`` (N, n, n) with ``H_vv[:, i, j] = d^2 L / d qdot_i d qdot_j`` (mass matrix),
        ``H_vq`` (N, n, n) with ``H_vq[:, i, j] = d^2 L / d qdot_i d q_j``.
    """
    x, n = _prepare_state(state)
    with torch.enable_grad():
        Lval = _evaluate_scalar(L, x)
        g = _grad(Lval, x, create_graph=True)  # first derivative must always keep its graph
        rows = [_grad(g[:, n + i], x, create_graph=create_graph) for i in range(n)]
    hess = torch.stack(rows, dim=1)  # (N, n, 2n): d/dx_j of dL/dqdot_i
    return {
        "L": Lval,
        "dL_dq": g[:, :n],
        "dL_dqdot": g[:, n:],
        "H_vv": hess[:, :, n:],
        "H_vq": hess[:, :, :n],
    }


def _check_hessian(H: Tensor, cond_max: float | None, ridge: float) -> None:
    """Raise :class:`SingularHessianError` if any sample's Hessian is (nearly) singular."""
    with torch.no_grad():
        Hd = H.detach()
        Hd = 0.5 * (Hd + Hd.transpose(-1, -2))
        finite = torch.isfinite(Hd).all(dim=(-1, -2))
        Hs = torch.where(finite[:, None, None], Hd, torch.zeros_like(Hd))
        eig = torch.linalg.eigvalsh(Hs).abs()  # (N, n)
        eig_min = eig.min(dim=-1).values
        eig_max = eig.max(dim=-1).values
        tiny = torch.finfo(H.dtype).tiny
        cond = eig_max / eig_min.clamp_min(tiny)
        cond = torch.where(eig_min > 0, cond, torch.full_like(cond, float("inf")))
        limit = float("inf") if cond_max is None else float(cond_max)
        bad = (~finite) | (eig_min <= 0) | (cond > limit)
        n_bad = int(bad.sum())
        if n_bad == 0:
            return
        worst = int(torch.argmax(torch.where(finite, cond, torch.full_like(cond, float("inf")))))
        n_total = H.shape[0]
        reg = f" (after adding ridge={ridge:g})" if ridge > 0 else ""
        raise SingularHessianError(
            f"the velocity Hessian d^2L/dq_dot^2 (mass matrix) is singular or ill-conditioned"
            f"{reg} for {n_bad} of {n_total} samples: smallest |eigenvalue| = "
            f"{float(eig_min[finite].min()) if bool(finite.any()) else float('nan'):.3e}, "
            f"largest condition number = {float(cond[worst]):.3e} (sample {worst}; "
            f"cond_max = {limit:.1e}; non-finite Hessians: {int((~finite).sum())}). "
            "The Lagrangian must depend (non-degenerately, e.g. quadratically) on the "
            "velocities; pass ridge>0 to regularise or initialise L with a kinetic term "
            "such as q_dot**2/2."
        )


def lagrangian_accelerations(
    L: LagrangianFn,
    state: Tensor,
    *,
    ridge: float = 0.0,
    create_graph: bool = True,
    cond_max: float | None = 1e8,
) -> Tensor:
    """Accelerations ``q_ddot`` implied by a Lagrangian through the Euler-Lagrange equations.

    Solves, per sample, ``H_vv q_ddot = dL/dq - H_vq q_dot`` where ``H_vv = d^2L/dqdot^2``
    and ``H_vq[i, j] = d^2 L / dqdot_i dq_j`` (KAN 2.0 eq. 18).

    Args:
        L: Lagrangian, any callable ``(N, 2n) -> (N,)`` or ``(N, 1)`` (torch function,
            KAN, MLP, ...). Must act per sample.
        state: ``(N, 2n)`` = ``[q, q_dot]``; float64 recommended.
        ridge: if > 0, solve with ``H_vv + ridge * I`` (Tikhonov regularisation).
        create_graph: if True (default) the result is differentiable w.r.t. the parameters
            of ``L`` (and ``state`` if it requires grad); use it for training losses. If
            False the result is detached (cheaper; for data generation / rollouts).
        cond_max: largest accepted condition number of the (regularised) Hessian; ``None``
            disables the check (singular matrices then yield inf/nan or a LinAlgError).

    Returns:
        ``q_ddot`` of shape ``(N, n)``, same dtype/device as ``state``.

    Raises:
        SingularHessianError: the (regularised) Hessian is singular, non-finite or has a
            condition number above ``cond_max`` for some sample.
    """
    d = lagrangian_derivatives(L, state, create_graph=create_graph)
    H = d["H_vv"]
    n = H.shape[-1]
    qdot = state[:, n:]
    if not create_graph:
        qdot = qdot.detach()
    if ridge > 0:
        H = H + ridge * torch.eye(n, dtype=H.dtype, device=H.device)
    if cond_max is not None or ridge <= 0:
        _check_hessian(H, cond_max, ridge)
    rhs = d["dL_dq"] - torch.einsum("nij,nj->ni", d["H_vq"], qdot)
    qddot = torch.linalg.solve(H, rhs.unsqueeze(-1)).squeeze(-1)
    if not create_graph:
        qddot = qddot.detach()
    return qddot


def lagrangian_energy(L: LagrangianFn, state: Tensor, *, create_graph: bool = False) -> Tensor:
    """Energy function ``E = q_dot . dL/dq_dot - L`` (conserved for time-independent L).

    Args:
        L: Lagrangian ``(N, 2n) -> (N,)``.
        state: ``(N, 2n)`` = ``[q, q_dot]``.
        create_graph: keep the graph (for use in a loss).

    Returns:
        ``E`` of shape ``(N,)`` in the units of ``L``.
    """
    x, n = _prepare_state(state)
    with torch.enable_grad():
        Lval = _evaluate_scalar(L, x)
        g = _grad(Lval, x, create_graph=create_graph)
    E = (x[:, n:] * g[:, n:]).sum(dim=-1) - Lval
    if not create_graph:
        E = E.detach()
    return E


def lagrangian_rhs(
    L: LagrangianFn,
    *,
    ridge: float = 0.0,
    create_graph: bool = False,
    cond_max: float | None = None,
) -> Callable[[Tensor, Tensor], Tensor]:
    """Vector field ``f(t, z) = [q_dot, q_ddot]`` of a Lagrangian, for ``torchdiffeq.odeint``.

    Args:
        L: Lagrangian ``(N, 2n) -> (N,)``.
        ridge: passed to :func:`lagrangian_accelerations`.
        create_graph: keep graphs so that ``odeint`` outputs are differentiable w.r.t. the
            parameters of ``L`` (backprop through the solver). Default False (rollouts).
        cond_max: Hessian condition check during integration; default ``None`` (off) so a
            rollout of an imperfect model degrades instead of raising mid-solve.

    Returns:
        ``f(t, z)`` accepting ``z`` of shape ``(B, 2n)`` or ``(2n,)``, returning the same shape.
        ``t`` is ignored (autonomous system).
    """

    def rhs(t: Tensor, z: Tensor) -> Tensor:
        squeeze = z.dim() == 1
        zz = z.unsqueeze(0) if squeeze else z
        n = zz.shape[-1] // 2
        qddot = lagrangian_accelerations(
            L, zz, ridge=ridge, create_graph=create_graph, cond_max=cond_max
        )
        qdot = zz[:, n:] if create_graph else zz[:, n:].detach()
        out = torch.cat([qdot, qddot], dim=-1)
        return out.squeeze(0) if squeeze else out

    return rhs
