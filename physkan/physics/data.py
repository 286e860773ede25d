"""Ground-truth data makers for the physics problems (KAN 2.0 paper, section 5).

Every maker is deterministic given ``seed`` (it uses its own ``torch.Generator``, never the
global RNG) and returns float64 tensors by default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import sympy
import torch
from torch import Tensor

from physkan.symbolic.parse import lambdify_torch, parse_expression

from .dynamics import integrate
from .lagrangian import LagrangianFn, lagrangian_accelerations, lagrangian_rhs

__all__ = [
    "conservation_data",
    "harmonic_oscillator_2d",
    "lagrangian_data",
    "lagrangian_from_sympy",
    "lagrangian_trajectories",
    "metric_data",
    "neo_hookean_data",
    "neo_hookean_stress",
    "neo_hookean_sympy",
    "sample_box",
    "sympy_callable",
]


def sample_box(
    ranges: Sequence[tuple[float, float]],
    n: int,
    seed: int,
    *,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """``n`` points uniform in the box ``prod_j [lo_j, hi_j]``: returns ``(n, len(ranges))``."""
    gen = torch.Generator().manual_seed(int(seed))
    lo = torch.tensor([float(a) for a, _ in ranges], dtype=dtype)
    hi = torch.tensor([float(b) for _, b in ranges], dtype=dtype)
    u = torch.rand(n, len(ranges), generator=gen, dtype=dtype)
    return lo + (hi - lo) * u


def sympy_callable(
    expr: sympy.Expr | str, variables: Sequence[sympy.Symbol | str]
) -> Callable[[Tensor], Tensor]:
    """Turn a sympy expression into a torch callable ``(N, n_vars) -> (N,)``.

    Args:
        expr: sympy expression, or text parsed with
            :func:`physkan.symbolic.parse.parse_expression` over ``variables``.
        variables: the symbols (or names, matched by name) in column order of the input.

    Returns:
        differentiable callable; a constant expression is broadcast to ``(N,)``.
    """
    names = [v if isinstance(v, str) else v.name for v in variables]
    if isinstance(expr, str):
        expr = parse_expression(expr, names)
    evaluate = lambdify_torch(expr, names)

    def call(x: Tensor) -> Tensor:
        return evaluate(x)

    call.__doc__ = f"torch version of {expr} in variables {names}"
    return call


def lagrangian_from_sympy(expr_text: str | sympy.Expr, coordinates: Sequence[str]) -> LagrangianFn:
    """Lagrangian callable from a formula, e.g. ``("q_dot**2/2 + cos(q)", ["q"])``.

    Velocities are named ``f"{q}_dot"``; the input column order is
    ``[q_1..q_n, q_1_dot..q_n_dot]``.

    Returns:
        callable ``(N, 2n) -> (N,)``.
    """
    names = list(coordinates) + [f"{q}_dot" for q in coordinates]
    return sympy_callable(expr_text, names)


def lagrangian_data(
    L_true: LagrangianFn,
    n_coords: int,
    ranges: Sequence[tuple[float, float]],
    n: int,
    seed: int,
    noise: float = 0.0,
    dtype: torch.dtype = torch.float64,
    *,
    ridge: float = 0.0,
) -> dict[str, Tensor]:
    """States sampled uniformly in a box and their exact Euler-Lagrange accelerations.

    Args:
        L_true: true Lagrangian ``(N, 2n) -> (N,)``.
        n_coords: number of generalised coordinates ``n``.
        ranges: ``2n`` ``(lo, hi)`` pairs: the ``q`` ranges then the ``q_dot`` ranges.
        n: number of samples.
        seed: RNG seed (sampling uses seed, noise uses seed + 1).
        noise: relative Gaussian noise: ``qddot += noise * |qddot| * N(0, 1)`` elementwise.
        dtype: floating dtype (float64 by default).
        ridge: Hessian regularisation (normally 0).

    Returns:
        dict ``state`` ``(n, 2n)`` and ``qddot`` ``(n, n)`` (both detached).
    """
    if len(ranges) != 2 * n_coords:
        raise ValueError(f"need 2*n_coords = {2 * n_coords} ranges; got {len(ranges)}")
    state = sample_box(ranges, n, seed, dtype=dtype)
    qddot = lagrangian_accelerations(L_true, state, ridge=ridge, create_graph=False)
    if noise > 0:
        gen = torch.Generator().manual_seed(int(seed) + 1)
        eps = torch.randn(qddot.shape, generator=gen, dtype=dtype)
        qddot = qddot + noise * qddot.abs() * eps
    return {"state": state.detach(), "qddot": qddot.detach()}


def lagrangian_trajectories(
    L_true: LagrangianFn,
    z0: Tensor,
    t: Tensor,
    *,
    method: str = "dopri5",
    rtol: float = 1e-8,
    atol: float = 1e-9,
) -> Tensor:
    """Trajectories of a Lagrangian system: ``(T, B, 2n)`` from ``z0`` ``(B, 2n)``, ``t`` ``(T,)``."""
    with torch.no_grad():
        return integrate(lagrangian_rhs(L_true), z0, t, method=method, rtol=rtol, atol=atol)


def conservation_data(
    f: Callable[[Tensor], Tensor],
    ranges: Sequence[tuple[float, float]],
    n: int,
    seed: int,
    dtype: torch.dtype = torch.float64,
) -> dict[str, Tensor]:
    """States ``z`` uniform in the box and their time derivatives ``f(z)``.

    Args:
        f: dynamics ``(N, d) -> (N, d)``.
        ranges: ``d`` ``(lo, hi)`` pairs (the paper uses ``[-1, 1]^d``).
        n: number of samples.
        seed: RNG seed.

    Returns:
        dict ``z`` ``(n, d)``, ``f`` ``(n, d)``.
    """
    z = sample_box(ranges, n, seed, dtype=dtype)
    with torch.no_grad():
        fz = f(z)
    return {"z": z, "f": torch.as_tensor(fz, dtype=dtype).reshape(z.shape)}


def harmonic_oscillator_2d(z: Tensor) -> Tensor:
    """Dynamics of the 2D isotropic oscillator, ``z = (x, y, p_x, p_y)`` -> ``(p_x, p_y, -x, -y)``.

    Conserved: ``H1 = (x^2 + p_x^2)/2``, ``H2 = (y^2 + p_y^2)/2``, ``H3 = x p_y - y p_x``.
    """
    x, y, px, py = z.unbind(-1)
    return torch.stack([px, py, -x, -y], dim=-1)


def metric_data(
    r_range: tuple[float, float] = (1.2, 3.0),
    n: int = 1000,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> dict[str, Tensor]:
    """Radii uniform in ``r_range`` for the Schwarzschild problem: dict ``r`` ``(n, 1)``."""
    return {"r": sample_box([r_range], n, seed, dtype=dtype)}


NeoHookeanForm = Literal["first_piola", "paper"]


def neo_hookean_stress(
    F: Tensor,
    mu: float = 5 / 12,
    lam: float = 5 / 18,
    form: NeoHookeanForm = "first_piola",
) -> Tensor:
    """2D neo-Hookean stress ``[P11, P12]`` from ``F`` ``(N, 4)`` = ``[F11, F12, F21, F22]``.

    ``form="first_piola"``: ``P = mu (F - F^-T) + lam log(J) F^-T`` (first Piola-Kirchhoff).
    ``form="paper"``: ``P = mu (F F^T - I) + lam log(J) I`` (KAN 2.0 eq. 22, Kirchhoff form).
    Both vanish at ``F = I``. ``mu``, ``lam`` are the Lame parameters (stress units).

    Returns:
        ``(N, 2)`` = ``[P11, P12]``.
    """
    F11, F12, F21, F22 = F.unbind(-1)
    J = F11 * F22 - F12 * F21
    logJ = torch.log(J)
    if form == "first_piola":
        # F^-T = [[F22, -F21], [-F12, F11]] / J
        P11 = mu * (F11 - F22 / J) + lam * logJ * F22 / J
        P12 = mu * (F12 + F21 / J) - lam * logJ * F21 / J
    elif form == "paper":
        P11 = mu * (F11**2 + F12**2 - 1.0) + lam * logJ
        P12 = mu * (F11 * F21 + F12 * F22)
    else:
        raise ValueError(f"unknown neo-Hookean form {form!r}; use 'first_piola' or 'paper'")
    return torch.stack([P11, P12], dim=-1)


def neo_hookean_data(
    n: int,
    seed: int,
    mu: float = 5 / 12,
    lam: float = 5 / 18,
    strain_range: float = 0.2,
    *,
    form: NeoHookeanForm = "first_piola",
    dtype: torch.dtype = torch.float64,
) -> dict[str, Tensor]:
    """2D neo-Hookean constitutive data (KAN 2.0 sec. 5.4).

    ``F_ij ~ U[delta_ij - w, delta_ij + w]`` with ``w = strain_range``; samples with
    ``det F <= 0`` are redrawn (impossible for ``w < 0.5``).

    Returns:
        dict ``F`` ``(n, 4)`` = ``[F11, F12, F21, F22]`` (dimensionless) and ``P`` ``(n, 2)``
        = ``[P11, P12]`` (units of ``mu``); see :func:`neo_hookean_stress` for ``form``.
    """
    w = float(strain_range)
    eye = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=dtype)
    gen = torch.Generator().manual_seed(int(seed))
    F = eye + (2.0 * torch.rand(n, 4, generator=gen, dtype=dtype) - 1.0) * w
    for _ in range(100):
        J = F[:, 0] * F[:, 3] - F[:, 1] * F[:, 2]
        bad = J <= 1e-6
        if not bool(bad.any()):
            break
        k = int(bad.sum())
        F[bad] = eye + (2.0 * torch.rand(k, 4, generator=gen, dtype=dtype) - 1.0) * w
    else:  # pragma: no cover - only for absurd strain ranges
        raise ValueError(f"strain_range={w} gives too many inverted deformations (det F <= 0)")
    return {"F": F, "P": neo_hookean_stress(F, mu, lam, form)}


def neo_hookean_sympy(
    mu: float | sympy.Expr = sympy.Rational(5, 12),
    lam: float | sympy.Expr = sympy.Rational(5, 18),
    *,
    form: NeoHookeanForm = "first_piola",
) -> dict[str, sympy.Expr]:
    """Sympy ``P11`` and ``P12`` in symbols ``F11, F12, F21, F22`` (see :func:`neo_hookean_stress`).

    Floats are converted with ``sympy.nsimplify`` (5/12 stays exact when given as a float).

    Returns:
        dict ``{"P11": expr, "P12": expr}``.
    """
    F11, F12, F21, F22 = sympy.symbols("F11 F12 F21 F22")
    m = sympy.nsimplify(mu, rational=True) if isinstance(mu, float) else sympy.sympify(mu)
    lm = sympy.nsimplify(lam, rational=True) if isinstance(lam, float) else sympy.sympify(lam)
    J = F11 * F22 - F12 * F21
    if form == "first_piola":
        P11 = m * (F11 - F22 / J) + lm * sympy.log(J) * F22 / J
        P12 = m * (F12 + F21 / J) - lm * sympy.log(J) * F21 / J
    elif form == "paper":
        P11 = m * (F11**2 + F12**2 - 1) + lm * sympy.log(J)
        P12 = m * (F11 * F21 + F12 * F22)
    else:
        raise ValueError(f"unknown neo-Hookean form {form!r}; use 'first_piola' or 'paper'")
    return {"P11": P11, "P12": P12}
