"""Hamiltonian mechanics by autograd: Hamilton's equations of any ``H(q, p)`` callable.

The phase-space state is ``z = [q_1..q_n, p_1..p_n]`` of shape ``(N, 2n)`` (float64 by
default); ``H`` maps ``(N, 2n) -> (N,)`` or ``(N, 1)`` (a torch function or a KAN).
Hamilton's equations: ``dq/dt = dH/dp``, ``dp/dt = -dH/dq`` (units: ``q`` per time and
``p`` per time).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["HamiltonianFn", "hamiltonian_rhs", "hamiltonian_vector_field"]

HamiltonianFn = Callable[[Tensor], Tensor]


def hamiltonian_vector_field(H: HamiltonianFn, z: Tensor, *, create_graph: bool = False) -> Tensor:
    """``dz/dt = [dH/dp, -dH/dq]`` at the states ``z (N, 2n)``; returns ``(N, 2n)``.

    Args:
        H: Hamiltonian ``(N, 2n) -> (N,)`` or ``(N, 1)``.
        z: ``(N, 2n)`` states ``[q, p]``.
        create_graph: keep the graph, so the result is differentiable w.r.t. the
            parameters of ``H`` (needed by losses) and w.r.t. ``z``.

    Raises:
        ValueError: ``z`` is not ``(N, 2n)`` or ``H`` returns another shape than ``(N,)``.
    """
    if z.dim() != 2 or z.shape[1] % 2 or z.shape[1] == 0:
        raise ValueError(f"state must have shape (N, 2n) = [q, p]; got {tuple(z.shape)}")
    n = z.shape[1] // 2
    x = z if z.requires_grad else z.detach().requires_grad_(True)
    with torch.enable_grad():
        out = H(x)
        if out.dim() == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.shape != (x.shape[0],):
            raise ValueError(
                f"the Hamiltonian must map (N, 2n) -> (N,) or (N, 1); got {tuple(out.shape)}"
            )
        if not out.requires_grad:
            return torch.zeros_like(x)
        (g,) = torch.autograd.grad(out.sum(), x, create_graph=create_graph, allow_unused=True)
    if g is None:
        return torch.zeros_like(x)
    field = torch.cat([g[:, n:], -g[:, :n]], dim=1)
    return field if create_graph else field.detach()


def hamiltonian_rhs(H: HamiltonianFn, *, create_graph: bool = False) -> Callable[[Tensor, Tensor], Tensor]:
    """Vector field ``f(t, z)`` of ``H`` for ``torchdiffeq.odeint`` (``z`` ``(B, 2n)`` or ``(2n,)``)."""

    def rhs(t: Tensor, z: Tensor) -> Tensor:
        squeeze = z.dim() == 1
        out = hamiltonian_vector_field(H, z.unsqueeze(0) if squeeze else z, create_graph=create_graph)
        return out.squeeze(0) if squeeze else out

    return rhs
