"""Sympy export of an S2KAN: open symbolic terms become formulas, open splines stay as named
functions ``spline_{l,i,j}(arg)`` so a mixed model is reported honestly."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import sympy
import torch
from torch import Tensor

from physkan.symbolic.simplify import clean_formula, snap_constants, snap_to_data

if TYPE_CHECKING:
    from physkan.s2kan.model import S2KAN

__all__ = ["edge_expression", "model_formulas", "simplify_expression", "spline_name", "spline_report"]

_EXPAND_OPS = 120


def spline_name(layer: int, i: int, j: int) -> str:
    """Name of the sympy function standing for the spline of edge ``(layer, i, j)``."""
    return f"spline_{{{layer},{i},{j}}}"


def _f(v: float) -> sympy.Expr:
    return sympy.Float(float(v), 17)


def edge_expression(model: S2KAN, lyr: int, i: int, j: int, arg: sympy.Expr) -> sympy.Expr:
    """``φ_ij(arg)`` of layer ``lyr`` with evaluation gates (closed terms dropped)."""
    layer = model.layers[lyr]
    with torch.no_grad():
        z = layer.gates()[i, j].tolist() if not layer.training else None
        if z is None:  # pragma: no cover - formulas are taken in eval mode
            raise RuntimeError("call model.eval() before taking formulas")
        a, b, c = layer.a[i, j].tolist(), layer.b[i, j].tolist(), layer.c[i, j].tolist()
        expr: sympy.Expr = _f(layer.d[i, j].item())
    for s, fn in enumerate(layer.functions):
        if z[s] <= 0 or c[s] == 0 or fn.name == "0":
            continue
        expr += _f(z[s] * c[s]) * fn.sympy_fn(_f(a[s]) * arg + _f(b[s]))
    if layer.use_spline and z[-1] > 0:
        expr += _f(z[-1]) * sympy.Function(spline_name(lyr, i, j))(arg)
    return expr


def _raw_formulas(model: S2KAN) -> list[sympy.Expr]:
    nodes: list[sympy.Expr] = [sympy.Symbol(v) for v in model.variables]
    for lyr, layer in enumerate(model.layers):
        subs = [
            sympy.Add(*[edge_expression(model, lyr, i, j, nodes[i]) for i in range(layer.n_in)])
            for j in range(layer.n_sub)
        ]
        n_add, n_mult = model.width[lyr + 1]
        nodes = subs[:n_add] + [subs[n_add + 2 * m] * subs[n_add + 2 * m + 1] for m in range(n_mult)]
    return nodes


def _expand(expr: sympy.Expr) -> sympy.Expr:
    if sympy.count_ops(expr) > _EXPAND_OPS:
        return expr
    try:
        return sympy.expand(expr, power_exp=True, log=False, power_base=False)
    except Exception:  # noqa: BLE001 - expansion is only a cosmetic step
        return expr


def simplify_expression(
    expr: sympy.Expr,
    variables: list[str],
    x: Tensor | None = None,
    y: Tensor | None = None,
    *,
    tolerance: float = 1e-5,
    zero_threshold: float = 1e-7,
) -> sympy.Expr:
    """Expand exponentials/products, snap near-rational/near-π constants, drop negligible
    terms, and return the shortest of a few rewrites. With data (``x (N, n_in)``, ``y (N,)``)
    and no spline functions, each snap is also checked against the data."""
    expr = _expand(expr)
    expr = snap_constants(expr, tolerance=tolerance, zero_threshold=zero_threshold)
    expr = _expand(expr)
    has_spline = bool(expr.atoms(sympy.core.function.AppliedUndef))
    if x is not None and y is not None and not has_spline and expr.atoms(sympy.Float):
        with contextlib.suppress(Exception):  # data snapping is best effort
            expr = snap_to_data(expr, variables, x.detach().double().numpy(),
                                y.detach().double().reshape(-1).numpy())  # fmt: skip
    expr = snap_constants(expr, tolerance=tolerance, zero_threshold=zero_threshold)
    return clean_formula(expr)


def model_formulas(
    model: S2KAN, *, simplify: bool = True, x: Tensor | None = None, y: Tensor | None = None
) -> list[sympy.Expr]:
    """One expression per output of ``model`` (see :meth:`S2KAN.formula`)."""
    was_training = model.training
    model.eval()
    try:
        raw = _raw_formulas(model)
    finally:
        model.train(was_training)
    if not simplify:
        return raw
    out = []
    for o, expr in enumerate(raw):
        yo = y[:, o] if y is not None else None
        out.append(simplify_expression(expr, model.variables, x, yo))
    return out


def spline_report(model: S2KAN) -> list[str]:
    """One line per open spline edge: where it is and what it reads."""
    lines = []
    for lyr, i, j in model.spline_edges():
        src = model.variables[i] if lyr == 0 else f"node {lyr},{i}"
        lines.append(
            f"{spline_name(lyr, i, j)}: layer {lyr}, input {i} ({src}) -> subnode {j}: no "
            f"library function describes this edge more briefly; kept a spline with "
            f"{model.layers[lyr].n_basis} coefficients"
        )
    return lines
