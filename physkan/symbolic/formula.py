"""Formula export: a (partly) symbolic KAN as sympy expressions in the user's variable names.

Symbolic edges contribute ``c·f(a·x + b) + d``; masked edges contribute nothing; numeric
(spline) edges either raise or, with ``allow_numeric=True``, appear as undefined functions
``phi_l_i_j(x)`` so a mixed formula is still readable. Subnode/node affines and
multiplication nodes are applied as in the forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sympy
import torch
from torch import Tensor

from physkan.errors import PhyskanError
from physkan.kan.network import MultKAN
from physkan.symbolic.library import get_symbolic
from physkan.symbolic.simplify import clean_formula, snap_constants, snap_to_data, to_latex, to_text

__all__ = ["Formula", "NumericEdgeError", "model_formula", "raw_formula"]


class NumericEdgeError(PhyskanError, ValueError):
    """The network still has spline edges, so it has no closed form."""


@dataclass
class Formula:
    """Exported formulas, one per output, and what could not be made symbolic."""

    expressions: list[sympy.Expr]
    variables: list[str]
    outputs: list[str]
    numeric_edges: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def text(self) -> list[str]:
        """Plain-text form of each output's formula."""
        return [to_text(e) for e in self.expressions]

    @property
    def latex(self) -> list[str]:
        """LaTeX form of each output's formula."""
        return [to_latex(e) for e in self.expressions]

    def __str__(self) -> str:
        return "\n".join(f"{o} = {t}" for o, t in zip(self.outputs, self.text))


def _num(value: float) -> sympy.Expr:
    return sympy.Integer(int(value)) if float(value).is_integer() else sympy.Float(value)


def _edge_expr(model: MultKAN, l: int, i: int, j: int, arg: sympy.Expr, allow_numeric: bool, numeric: list):
    layer = model.layers[l]
    if layer.mask[i, j] == 0:
        return sympy.Integer(0)
    if layer.symbolic_mask[i, j] == 1:
        a, b, c, d = layer.symbolic_affine[i, j].detach().tolist()
        if c == 0:
            return _num(d)
        fn = get_symbolic(layer.symbolic_names[i][j])
        return _num(c) * fn.sympy_fn(_num(a) * arg + _num(b)) + _num(d)
    numeric.append((l, i, j))
    if not allow_numeric:
        return sympy.Integer(0)
    return sympy.Function(f"phi_{l}_{i}_{j}")(arg)


def raw_formula(
    model: MultKAN, variables: Sequence[str] | None = None, *, allow_numeric: bool = False
) -> Formula:
    """Propagate symbols through the network without any snapping or simplification.

    Raises:
        NumericEdgeError: if spline edges remain and ``allow_numeric`` is false (the message
            lists them as ``(layer, i, j)``).
    """
    names = list(variables) if variables is not None else list(model.variables)
    nodes: list[sympy.Expr] = [sympy.Symbol(n, real=True) for n in names]
    numeric: list[tuple[int, int, int]] = []
    for l, layer in enumerate(model.layers):
        subs = []
        for j in range(layer.out_dim):
            total = sympy.Integer(0)
            for i in range(layer.in_dim):
                total += _edge_expr(model, l, i, j, nodes[i], allow_numeric, numeric)
            s = model.subnode_scale[l][j].item()
            b = model.subnode_bias[l][j].item()
            subs.append(_num(s) * total + _num(b))
        n_add, n_mult = model.width[l + 1]
        combined = subs[:n_add]
        for m in range(n_mult):
            start = n_add + m * model.mult_arity
            combined.append(sympy.Mul(*subs[start : start + model.mult_arity]))
        nodes = [
            _num(model.node_scale[l][q].item()) * e + _num(model.node_bias[l][q].item())
            for q, e in enumerate(combined)
        ]
    if numeric and not allow_numeric:
        listed = ", ".join(str(e) for e in numeric)
        raise NumericEdgeError(
            f"{len(numeric)} edge(s) are still splines: {listed}; run auto_symbolic or "
            "fix_symbolic first, or pass allow_numeric=True"
        )
    return Formula(nodes, names, list(model.outputs), numeric)


def model_formula(
    model: MultKAN,
    x: Tensor | None = None,
    y: Tensor | None = None,
    *,
    variables: Sequence[str] | None = None,
    snap: bool = True,
    simplify: bool = True,
    allow_numeric: bool = False,
) -> Formula:
    """The network's formula for every output, in the user's variable names.

    Args:
        x: samples ``(N, n_in)``; with them, constants are snapped only where the formula's
            error on the data improves or stays equal (``y`` defaults to the model's output).
        y: targets ``(N, n_out)`` to judge snapping against.
        snap: round constants to simple rationals / multiples of pi, e, sqrt(2).
        simplify: cheap, safe sympy cleanup.
    """
    formula = raw_formula(model, variables, allow_numeric=allow_numeric)
    if formula.numeric_edges:
        snap = False  # undefined functions cannot be evaluated
    if snap and x is not None and y is None:
        with torch.no_grad():
            y = model(x)
    exprs = []
    for k, expr in enumerate(formula.expressions):
        expr = sympy.sympify(expr)
        if simplify:
            expr = clean_formula(expr)
        if snap:
            if x is not None:
                expr = snap_to_data(expr, formula.variables, x, y[:, k])
            else:
                expr = snap_constants(expr)
            if simplify:
                expr = clean_formula(expr)
        exprs.append(expr)
    formula.expressions = exprs
    return formula
