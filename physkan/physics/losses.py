"""Physics losses: Euler-Lagrange, symplectic (Hamilton), conserved quantities, metric flatness.

All losses take plain callables (torch functions or ``nn.Module`` s such as KANs) and are
differentiable w.r.t. the callable's parameters, so they can be minimised directly with
Adam or LBFGS. Each returns a 0-dim tensor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from .hamiltonian import HamiltonianFn, hamiltonian_vector_field
from .lagrangian import LagrangianFn, lagrangian_accelerations
from .metric import spatial_flatness_loss

__all__ = [
    "conservation_loss",
    "conservation_loss_terms",
    "euler_lagrange_loss",
    "independence_penalty",
    "metric_flatness_loss",
    "symplectic_loss",
]


def euler_lagrange_loss(
    L: LagrangianFn,
    state: Tensor,
    qddot_obs: Tensor,
    *,
    ridge: float = 0.0,
    cond_max: float | None = 1e8,
) -> Tensor:
    """Mean squared error between the accelerations implied by ``L`` and observed ones.

    Args:
        L: learned Lagrangian, ``(N, 2n) -> (N,)`` or ``(N, 1)``.
        state: ``(N, 2n)`` = ``[q, q_dot]``.
        qddot_obs: ``(N, n)`` observed accelerations (units of ``q`` / time^2).
        ridge: Hessian regularisation (see :func:`lagrangian_accelerations`).
        cond_max: Hessian condition limit; raises :class:`SingularHessianError` above it.

    Returns:
        0-dim tensor ``mean((q_ddot_pred - q_ddot_obs)^2)`` over samples and coordinates,
        differentiable w.r.t. the parameters of ``L``.
    """
    pred = lagrangian_accelerations(L, state, ridge=ridge, create_graph=True, cond_max=cond_max)
    obs = qddot_obs.reshape(pred.shape).to(pred)
    return torch.mean((pred - obs) ** 2)


def symplectic_loss(H: HamiltonianFn, z: Tensor, zdot_obs: Tensor) -> Tensor:
    """Mean squared mismatch of Hamilton's equations: ``dH/dp - q_dot``, ``dH/dq + p_dot``.

    Args:
        H: learned Hamiltonian, ``(N, 2n) -> (N,)`` or ``(N, 1)``.
        z: ``(N, 2n)`` phase-space states ``[q, p]``.
        zdot_obs: ``(N, 2n)`` observed ``[q_dot, p_dot]`` (per unit time).

    Returns:
        0-dim tensor ``mean((J grad H - zdot_obs)^2)`` over samples and components,
        differentiable w.r.t. the parameters of ``H``. H is fixed only up to an additive
        constant by this loss (its scale is fixed by the data).
    """
    pred = hamiltonian_vector_field(H, z, create_graph=True)
    return torch.mean((pred - zdot_obs.reshape(pred.shape).to(pred)) ** 2)


def _quantity_gradients(H: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    """Gradients of the ``m`` outputs of ``H`` w.r.t. ``z``: returns (N, m, d), with graph."""
    x = z if z.requires_grad else z.detach().requires_grad_(True)
    with torch.enable_grad():
        out = H(x)
        if out.dim() == 1:
            out = out[:, None]
        if out.dim() != 2 or out.shape[0] != x.shape[0]:
            raise ValueError(
                f"H must map (N, d) -> (N, m) or (N,); got {tuple(out.shape)} "
                f"for input {tuple(x.shape)}"
            )
        grads = []
        for k in range(out.shape[1]):
            if not out.requires_grad:
                grads.append(torch.zeros_like(x))
                continue
            (g,) = torch.autograd.grad(
                out[:, k].sum(), x, create_graph=True, retain_graph=True, allow_unused=True
            )
            grads.append(torch.zeros_like(x) if g is None else g)
    return torch.stack(grads, dim=1)


def independence_penalty(
    unit_grads: Tensor,
    *,
    kind: Literal["gram", "logdet"] = "gram",
    eps: float = 1e-8,
) -> Tensor:
    """Penalty that is large when the ``m`` gradient directions are linearly dependent.

    Args:
        unit_grads: ``(N, m, d)`` (approximately) unit gradient vectors.
        kind: ``"gram"``: mean of the squared off-diagonal entries of the Gram matrix
            ``G = U U^T`` (each ``cos^2`` of an angle, in [0, 1]; 1 for identical
            quantities, 0 for orthogonal gradients). ``"logdet"``: ``-log(det G + eps)``
            clipped at 0 (0 for orthogonal, ``-log(eps)`` for dependent gradients).
        eps: clipping constant for ``"logdet"``.

    Returns:
        0-dim tensor averaged over samples; 0 if ``m == 1``.

    Note: independent conserved quantities need not have orthogonal gradients (e.g. the
    2D oscillator's ``H1`` and angular momentum), so this term biases towards
    orthogonality; keep its weight moderate.
    """
    m = unit_grads.shape[1]
    if m < 2:
        return unit_grads.new_zeros(())
    gram = unit_grads @ unit_grads.transpose(-1, -2)  # (N, m, m)
    if kind == "gram":
        off = gram - torch.diag_embed(torch.diagonal(gram, dim1=-2, dim2=-1))
        return (off**2).sum(dim=(-1, -2)).mean() / (m * (m - 1))
    if kind == "logdet":
        det = torch.linalg.det(gram)
        return torch.clamp(-torch.log(det.clamp_min(0.0) + eps), min=0.0).mean()
    raise ValueError(f"unknown independence kind {kind!r}; use 'gram' or 'logdet'")


def conservation_loss_terms(
    H: Callable[[Tensor], Tensor],
    z: Tensor,
    f: Tensor,
    *,
    independence_weight: float = 1.0,
    nontrivial_weight: float = 1.0,
    independence: Literal["gram", "logdet"] = "gram",
    normalize_f: bool = True,
    eps: float = 1e-8,
) -> dict[str, Tensor]:
    """The terms of :func:`conservation_loss`, for logging. See that function.

    Returns:
        dict of 0-dim tensors: ``alignment``, ``independence``, ``nontrivial``, ``total``.
    """
    grads = _quantity_gradients(H, z)  # (N, m, d)
    f = f.to(grads)
    if f.shape != (grads.shape[0], grads.shape[2]):
        raise ValueError(
            f"f must have shape {(grads.shape[0], grads.shape[2])}; got {tuple(f.shape)}"
        )
    gnorm = torch.linalg.vector_norm(grads, dim=-1, keepdim=True)  # (N, m, 1)
    unit = grads / (gnorm + eps)
    if normalize_f:
        fdir = f / (torch.linalg.vector_norm(f, dim=-1, keepdim=True) + eps)
    else:
        fdir = f
    align = torch.einsum("nmd,nd->nm", unit, fdir)
    alignment = torch.mean(align**2)
    # |unit| = |g| / (|g| + eps): ~1 for a genuine gradient, -> 0 if grad H vanishes.
    # (1 - |unit|)^2 = (eps / (|g| + eps))^2 is ~0 unless H is (locally) constant, in which
    # case it is ~1 -- so a trivial H cannot reach zero loss.
    nontrivial = torch.mean((eps / (gnorm + eps)) ** 2)
    indep = independence_penalty(unit, kind=independence, eps=eps)
    total = alignment + independence_weight * indep + nontrivial_weight * nontrivial
    return {"alignment": alignment, "independence": indep, "nontrivial": nontrivial, "total": total}


def conservation_loss(
    H: Callable[[Tensor], Tensor],
    z: Tensor,
    f: Tensor,
    *,
    independence_weight: float = 1.0,
    nontrivial_weight: float = 1.0,
    independence: Literal["gram", "logdet"] = "gram",
    normalize_f: bool = True,
    eps: float = 1e-8,
) -> Tensor:
    """Loss whose minimisers ``H`` are conserved quantities of ``dz/dt = f(z)`` (sec. 5.1).

    ``H`` is conserved iff ``f(z) . grad H(z) = 0`` for all ``z``. With unit vectors
    ``g_k = grad H_k / (|grad H_k| + eps)`` and ``u = f / (|f| + eps)``::

        loss = mean_{i,k} (u_i . g_{k,i})^2                          # alignment, in [0, 1]
             + independence_weight * independence_penalty(g)        # m >= 2 only
             + nontrivial_weight * mean_{i,k} (eps / (|grad H_k| + eps))^2

    The unit-vector normalisation makes the loss invariant to the scale of ``H``; the last
    term is ~1 where ``grad H`` vanishes, so a constant ``H`` cannot reach zero loss.

    Args:
        H: learned quantities, ``(N, d) -> (N, m)`` (or ``(N,)`` for ``m = 1``).
        z: ``(N, d)`` states.
        f: ``(N, d)`` time derivatives ``dz/dt`` at ``z``.
        independence_weight: weight of the term keeping the ``m`` gradients independent.
        nontrivial_weight: weight of the anti-collapse term.
        independence: ``"gram"`` or ``"logdet"`` (see :func:`independence_penalty`).
        normalize_f: use the unit vector of ``f`` (default) or ``f`` itself (paper's form).
        eps: regulariser of the norms (in units of ``|grad H|``).

    Returns:
        0-dim tensor, differentiable w.r.t. the parameters of ``H``.
    """
    return conservation_loss_terms(
        H,
        z,
        f,
        independence_weight=independence_weight,
        nontrivial_weight=nontrivial_weight,
        independence=independence,
        normalize_f=normalize_f,
        eps=eps,
    )["total"]


def metric_flatness_loss(
    delta_t: Callable[[Tensor], Tensor],
    r: Tensor,
    mass: float = 0.5,
    *,
    derivative_given: bool = False,
) -> Tensor:
    """Schwarzschild hidden-symmetry loss; alias of :func:`physkan.physics.metric.spatial_flatness_loss`.

    Args:
        delta_t: model of ``Delta t(r)`` (or of ``Delta t'(r)`` with ``derivative_given``),
            ``(N, 1) -> (N, 1)``.
        r: ``(N, 1)`` radii (units with ``G = c = 1``), outside the horizon ``r > 2M``.
        mass: black-hole mass ``M`` (default 0.5, i.e. ``2M = 1``).
        derivative_given: the model outputs ``Delta t'(r)`` directly.

    Returns:
        0-dim tensor ``mean_r (g_rr + g_tt * Delta t'(r)^2 - 1)^2``.
    """
    return spatial_flatness_loss(delta_t, r, mass, derivative_given=derivative_given)
