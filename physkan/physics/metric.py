"""Hidden symmetry of the Schwarzschild black hole (KAN 2.0 paper, section 5.3).

Geometrised units ``G = c = 1``; default mass ``M = 0.5`` so the horizon is at
``r_s = 2M = 1``; training radii are ``r in [1.2, 3]``.

The Schwarzschild metric in ``(t, r, theta, phi)`` (signature -+++) is::

    g = diag(-(1 - 2M/r), 1/(1 - 2M/r), r^2, r^2 sin^2 theta).

A new time coordinate ``t' = t + Delta t(r)`` (so ``dt = dt' - Delta t'(r) dr``) gives::

    g'_{t't'} = g_tt,   g'_{t'r} = -g_tt Delta t'(r),   g'_{rr} = g_rr + g_tt Delta t'(r)^2,

angular part unchanged. The spatial slices ``t' = const`` are flat (translation invariant)
iff the induced metric ``gamma_rr = g'_{rr} = 1``; the loss is therefore
``mean_r (g_rr + g_tt Delta t'^2 - 1)^2``. It equals the paper's Frobenius loss on the
Cartesian 3x3 spatial block, because that block differs from the identity by
``(gamma_rr - 1) x x^T / r^2`` whose Frobenius norm is ``|gamma_rr - 1|``.

Exact solutions (Gullstrand-Painleve): ``Delta t'(r) = +- sqrt(2M/r) / (1 - 2M/r)`` and
``Delta t(r) = 2M (2u + ln((u - 1)/(u + 1)))`` with ``u = sqrt(r / 2M)`` (plus a constant).
"""

from __future__ import annotations

from collections.abc import Callable

import sympy
import torch
from torch import Tensor

__all__ = [
    "gullstrand_painleve_delta_t",
    "gullstrand_painleve_derivative",
    "gullstrand_painleve_sympy",
    "schwarzschild_metric",
    "spatial_flatness_loss",
    "spatial_metric_rr",
    "transformed_metric",
]


def _as_column(r: Tensor) -> Tensor:
    if r.dim() == 1:
        return r[:, None]
    if r.dim() == 2 and r.shape[1] == 1:
        return r
    raise ValueError(f"r must have shape (N,) or (N, 1); got {tuple(r.shape)}")


def schwarzschild_metric(r: Tensor, theta: Tensor | float, mass: float = 0.5) -> Tensor:
    """Schwarzschild metric components in Schwarzschild coordinates ``(t, r, theta, phi)``.

    Args:
        r: ``(N,)`` or ``(N, 1)`` areal radius (> 2M).
        theta: ``(N,)``/``(N, 1)`` polar angle in radians, or a scalar.
        mass: ``M`` (geometrised units).

    Returns:
        ``(N, 4, 4)`` diagonal metric ``diag(-(1-2M/r), 1/(1-2M/r), r^2, r^2 sin^2 theta)``.
    """
    rc = _as_column(r)[:, 0]
    th = torch.as_tensor(theta, dtype=rc.dtype, device=rc.device)
    th = th.reshape(-1) if th.dim() > 0 else th.expand_as(rc)
    f = 1.0 - 2.0 * mass / rc
    diag = torch.stack([-f, 1.0 / f, rc**2, rc**2 * torch.sin(th) ** 2], dim=-1)
    return torch.diag_embed(diag)


def transformed_metric(
    delta_t_prime: Tensor, r: Tensor, theta: Tensor | float, mass: float = 0.5
) -> Tensor:
    """Metric in coordinates ``(t', r, theta, phi)`` with ``t' = t + Delta t(r)``.

    Args:
        delta_t_prime: ``(N,)``/``(N, 1)`` values of ``d Delta t / dr``.
        r: ``(N,)``/``(N, 1)`` radii.
        theta: polar angle(s).
        mass: ``M``.

    Returns:
        ``(N, 4, 4)`` with ``g'_tt = g_tt``, ``g'_tr = g'_rt = -g_tt Delta t'``,
        ``g'_rr = g_rr + g_tt Delta t'^2``, angular block unchanged.
    """
    g = schwarzschild_metric(r, theta, mass)
    dtp = _as_column(delta_t_prime)[:, 0].to(g)
    gtt = g[:, 0, 0]
    gp = g.clone()
    gp[:, 0, 1] = -gtt * dtp
    gp[:, 1, 0] = -gtt * dtp
    gp[:, 1, 1] = g[:, 1, 1] + gtt * dtp**2
    return gp


def spatial_metric_rr(delta_t_prime: Tensor, r: Tensor, mass: float = 0.5) -> Tensor:
    """Induced radial metric ``gamma_rr = g_rr + g_tt Delta t'^2`` on ``t' = const`` slices.

    Args:
        delta_t_prime: ``(N, 1)`` (or ``(N,)``) values of ``Delta t'(r)``.
        r: same shape, radii.
        mass: ``M``.

    Returns:
        ``gamma_rr`` with the broadcast shape of the inputs (1 for Gullstrand-Painleve).
    """
    f = 1.0 - 2.0 * mass / r
    return 1.0 / f - f * delta_t_prime**2


def spatial_flatness_loss(
    delta_t: Callable[[Tensor], Tensor],
    r: Tensor,
    mass: float = 0.5,
    *,
    derivative_given: bool = False,
) -> Tensor:
    """Loss that vanishes iff ``t' = t + Delta t(r)`` makes the spatial slices flat.

    Two parameterisations:

    * ``derivative_given=False`` (default, as in the paper): ``delta_t`` models
      ``Delta t(r)``; its derivative is taken by autograd with ``create_graph=True`` so the
      loss is differentiable w.r.t. the model's parameters (second-order autograd).
    * ``derivative_given=True``: ``delta_t`` directly models ``Delta t'(r)`` (simpler to fit;
      integrate afterwards -- symbolically or numerically -- to get ``Delta t``).

    Args:
        delta_t: model, ``(N, 1) -> (N, 1)`` (``(N,)`` output also accepted).
        r: ``(N, 1)`` radii, ``r > 2M``.
        mass: ``M`` (default 0.5, i.e. horizon at ``r = 1``).
        derivative_given: see above.

    Returns:
        0-dim tensor ``mean_r (g_rr + g_tt Delta t'(r)^2 - 1)^2`` (dimensionless).
    """
    rc = _as_column(r)
    if derivative_given:
        dtp = delta_t(rc)
    else:
        x = rc if rc.requires_grad else rc.detach().requires_grad_(True)
        with torch.enable_grad():
            out = delta_t(x)
            if not out.requires_grad:
                dtp = torch.zeros_like(x)
            else:
                (dtp,) = torch.autograd.grad(out.sum(), x, create_graph=True, allow_unused=True)
                if dtp is None:
                    dtp = torch.zeros_like(x)
        rc = x
    dtp = dtp.reshape(rc.shape)
    gamma = spatial_metric_rr(dtp, rc, mass)
    return torch.mean((gamma - 1.0) ** 2)


def gullstrand_painleve_derivative(r: Tensor, mass: float = 0.5) -> Tensor:
    """Exact ``Delta t'(r) = sqrt(2M/r) / (1 - 2M/r)`` (same shape as ``r``)."""
    s = 2.0 * mass / r
    return torch.sqrt(s) / (1.0 - s)


def gullstrand_painleve_delta_t(r: Tensor, mass: float = 0.5) -> Tensor:
    """Exact ``Delta t(r) = 2M (2u + ln((u-1)/(u+1)))``, ``u = sqrt(r/2M)``, for ``r > 2M``."""
    u = torch.sqrt(r / (2.0 * mass))
    return 2.0 * mass * (2.0 * u + torch.log((u - 1.0) / (u + 1.0)))


def gullstrand_painleve_sympy(
    mass: float | sympy.Expr = sympy.Rational(1, 2),
    *,
    derivative: bool = False,
    r: sympy.Symbol | None = None,
) -> sympy.Expr:
    """Gullstrand-Painleve transformation as a sympy expression in ``r``.

    Args:
        mass: ``M``; a float is converted with ``sympy.nsimplify`` (0.5 -> 1/2).
        derivative: return ``Delta t'(r)`` instead of ``Delta t(r)``.
        r: symbol to use (default ``Symbol("r", positive=True)``).

    Returns:
        ``2M (2u + log((u-1)/(u+1)))`` with ``u = sqrt(r/(2M))``, or its derivative
        ``sqrt(2M/r) / (1 - 2M/r)``.
    """
    r = sympy.Symbol("r", positive=True) if r is None else r
    M = sympy.nsimplify(mass)
    if derivative:
        return sympy.sqrt(2 * M / r) / (1 - 2 * M / r)
    u = sympy.sqrt(r / (2 * M))
    return 2 * M * (2 * u + sympy.log((u - 1) / (u + 1)))
