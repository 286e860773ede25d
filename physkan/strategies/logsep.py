"""Multiplicative separability for the regression strategy: fit ``log|y|`` additively.

When the target keeps one sign on the data, ``y = s·prod_i g_i(x_i)`` is the same as
``log|y| = log|C| + sum_i log|g_i(x_i)|``: an additive ``[n_in, 1]`` KAN on ``log|y|``
whose edges are simple (``log`` for power laws, ``x`` for exponentials). This module
holds the transform and turns the symbolic log-space network back into a formula for ``y``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy
import torch
from torch import Tensor

from physkan.kan.network import MultKAN
from physkan.linalg import lstsq
from physkan.symbolic.formula import raw_formula
from physkan.symbolic.library import get_symbolic
from physkan.symbolic.parse import lambdify_numpy
from physkan.symbolic.simplify import (
    DEFAULT_CONSTANTS,
    clean_formula,
    snap_to_data,
    snap_value,
)

__all__ = ["LOG_LIBRARY", "SNAP_CONSTANTS", "linear_log_formula", "log_formula", "log_target", "sign_of"]

#: Edge functions of a log-space network: ``log`` (powers), ``x``/``x^2``/``1/x`` (exp factors).
LOG_LIBRARY: tuple[str, ...] = ("x", "log", "x^2", "1/x")

#: Functions with ``f(a·x) = a^p·f(x)`` or ``log(a·x) = log(a) + log(x)``.
SCALE_FREE = frozenset({"x", "x^2", "x^3", "x^4", "x^5", "1/x", "1/x^2", "1/x^3", "1/x^4",
                        "sqrt", "x^1.5", "1/sqrt", "1/x^1.5", "log"})  # fmt: skip

#: Snapping constants for prefactors: the defaults plus ``pi^2`` (``hbar^2`` laws).
SNAP_CONSTANTS: tuple[sympy.Expr, ...] = (*DEFAULT_CONSTANTS, sympy.pi**2)


def sign_of(y: Tensor) -> int:
    """``+1``/``-1`` when every ``y`` is strictly positive/negative (and not tiny), else 0."""
    if y.numel() == 0 or y.shape[-1] != 1:
        return 0
    scale = float(y.abs().max())
    if scale == 0.0 or float(y.abs().min()) < 1e-8 * scale:
        return 0
    if bool((y > 0).all()):
        return 1
    if bool((y < 0).all()):
        return -1
    return 0


def log_target(y: Tensor) -> Tensor:
    """``log|y|`` (the caller has checked that ``y`` keeps one sign)."""
    return y.abs().log()


def log_formula(
    model: MultKAN,
    variables: Sequence[str],
    sign: int,
    x: Tensor,
    y: Tensor,
) -> sympy.Expr:
    """``sign·exp(F)`` for the symbolic log-space network ``F``, simplified and snapped.

    The log-space formula is snapped first (exponents to rationals, shifts to 0), then
    its constant term is split off, so ``exp(F)`` becomes ``C·prod x_i^p_i·...``; the
    prefactor ``C`` is snapped against ``y``.
    """
    symbols = [sympy.Symbol(v, real=True) for v in variables]
    pos = {s: sympy.Symbol(s.name, positive=True) for s in symbols}
    logy = log_target(y).reshape(-1)
    F = raw_formula(model, variables).expressions[0]
    F = snap_to_data(sympy.sympify(F), variables, x, logy, constants=SNAP_CONSTANTS)
    F = sympy.expand_log(sympy.expand(F.xreplace(pos)), force=True)
    F = sympy.expand(F)
    const, rest = F.as_independent(*pos.values(), as_Add=True)
    prefactor = sign * sympy.exp(const)
    if prefactor.is_number:
        value = float(prefactor)
        snapped = snap_value(value, tolerance=1e-5, constants=SNAP_CONSTANTS)
        prefactor = snapped if snapped is not None else sympy.Float(value)
    expr = prefactor * sympy.powsimp(sympy.exp(rest), force=True)
    expr = sympy.powsimp(sympy.expand_power_exp(expr), force=True)
    expr = snap_to_data(expr, [pos[s].name for s in symbols], x, y.reshape(-1), constants=SNAP_CONSTANTS)
    expr = clean_formula(expr)
    return expr.xreplace({p: s for s, p in pos.items()})


def _edge_names(model: MultKAN) -> list[tuple[str, sympy.Expr, sympy.Expr] | None]:
    """Each input's edge in a ``[n, 1]`` network as ``(function, scale, shift)`` (``None``: none).

    The edge is ``c·f(a·x + b) + d``. For a scale-free ``f`` (powers, ``log``) the scale only
    changes ``c`` and ``d``, so the argument is normalised to ``x + b/a``; otherwise ``a`` and
    ``b`` are snapped to simple numbers where they are close to one.
    """
    layer = model.layers[0]
    names: list[tuple[str, sympy.Expr, sympy.Expr] | None] = []
    for i in range(layer.in_dim):
        alive = layer.mask[i, 0] != 0 and layer.symbolic_mask[i, 0] == 1
        a, b, c, _ = layer.symbolic_affine[i, 0].detach().tolist() if alive else (0.0, 0.0, 0.0, 0.0)
        if not alive or c == 0.0 or a == 0.0:
            names.append(None)
            continue
        name = layer.symbolic_names[i][0]
        if name in SCALE_FREE:
            names.append((name, sympy.Integer(1), _snap_small(b / a, 1e-2)))
        else:
            scale = snap_value(a, tolerance=1e-3, constants=DEFAULT_CONSTANTS)
            names.append((name, scale if scale is not None else sympy.Float(a), _snap_small(b, 1e-3)))
    return names


def _snap_small(value: float, tiny: float) -> sympy.Expr:
    """0 for ``|value| <= tiny``, else a simple rational near it, else the float itself."""
    if abs(value) <= tiny:
        return sympy.Integer(0)
    snapped = snap_value(value, tolerance=1e-2, max_denominator=4, constants=(sympy.pi,))
    return snapped if snapped is not None else sympy.Float(value)


def linear_log_formula(
    model: MultKAN,
    variables: Sequence[str],
    sign: int,
    x: Tensor,
    y: Tensor,
    *,
    exact_rel: float = 1e-9,
) -> sympy.Expr | None:
    """Refit ``log|y| = d + sum_i c_i·f_i(x_i)`` by least squares on the edges' functions.

    The auto-symbolic stage has picked each edge's function ``f_i`` (``log`` for a power,
    ``x`` for an exponential ...); with the inner affine set to the identity the model is
    linear in ``c_i`` and ``d``, so least squares gives them to machine precision for an
    exact law. Returns ``sign·e^d·prod exp(c_i f_i(x_i))`` with snapped exponents and
    prefactor, or ``None`` when the linear model does not fit exactly.
    """
    names = _edge_names(model)
    used = [(i, n) for i, n in enumerate(names) if n is not None]
    logy = log_target(y).reshape(-1).double()
    cols = [get_symbolic(n).torch_fn(float(sc) * x[:, i].double() + float(sh)) for i, (n, sc, sh) in used]
    A = torch.stack([*cols, torch.ones_like(logy)], 1)
    sol = lstsq(A, logy.unsqueeze(1)).reshape(-1)
    resid = float(((A @ sol - logy) ** 2).mean().sqrt())
    if not resid <= exact_rel * max(float(logy.std()), 1.0):
        return None
    symbols = {v: sympy.Symbol(v, positive=True) for v in variables}
    log_expr: sympy.Expr = sympy.Integer(0)
    for (i, (n, sc, sh)), c in zip(used, sol[:-1].tolist()):
        coef = snap_value(c, tolerance=1e-6, max_denominator=12, constants=())
        coef = coef if coef is not None else sympy.Float(c)
        log_expr += coef * get_symbolic(n).sympy_fn(sc * symbols[variables[i]] + sh)
    log_expr = sympy.expand_log(log_expr, force=True)
    # refit the intercept with the snapped exponents, then snap the prefactor
    d = float(logy.mean())
    if log_expr != 0:
        vals = torch.as_tensor(lambdify_numpy(log_expr, list(variables))(x.detach().double().numpy()))
        d = float((logy - vals).mean())
    value = sign * float(torch.tensor(d, dtype=torch.float64).exp())
    pref = snap_value(value, tolerance=1e-7, constants=SNAP_CONSTANTS)
    prefactor = pref if pref is not None else sympy.Float(value)
    expr = prefactor * sympy.powsimp(sympy.exp(log_expr), force=True)
    expr = clean_formula(sympy.powsimp(expr, force=True))
    back = {p: sympy.Symbol(v, real=True) for v, p in symbols.items()}
    return expr.xreplace(back)
