"""Evaluate what a discovery found on new inputs: its formula, or its network's edges.

A closed-form formula is evaluated with the one numpy lambdify
(:func:`physkan.symbolic.parse.lambdify_numpy`). A formula with edges that stayed splines
(``phi_l_i_j(arg)``, :func:`physkan.symbolic.formula.raw_formula`) is evaluated the same way,
each ``phi_l_i_j`` being the trained network's edge ``(l, i, j)``: so the prediction is the
trained network's even when the answer is a transformed network (``sign·exp(network)`` of a
network of ``log|y|``). Other models without a formula fall back to their forward pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import sympy
import torch
from sympy.core.function import AppliedUndef
from torch import nn

from physkan.symbolic.parse import lambdify_numpy, numpy_modules

__all__ = ["Predictor", "predictor"]

#: ``X (N, n_features) -> (N,)`` float64.
Predictor = Callable[[np.ndarray], np.ndarray]

_EDGE = re.compile(r"phi_(\d+)_(\d+)_(\d+)")


def _edge_function(model: nn.Module, l: int, i: int, j: int) -> Callable[[np.ndarray], np.ndarray]:
    """The numpy function ``a (N,) -> phi_{l,i,j}(a) (N,)`` of a MultKAN's edge."""
    layer = model.layers[l]
    dtype = layer.coef.dtype

    def phi(a: np.ndarray) -> np.ndarray:
        a = np.atleast_1d(np.asarray(a, dtype=np.float64))
        x = torch.zeros((a.shape[0], layer.in_dim), dtype=dtype)
        x[:, i] = torch.tensor(a, dtype=dtype)
        with torch.no_grad():
            return layer.edge_activations(x)[:, i, j].double().numpy()

    return phi


def _network_edges(expr: sympy.Expr, model: nn.Module | None) -> dict[str, Callable] | None:
    """``phi_l_i_j`` name -> edge function, or ``None`` when ``model`` cannot provide them."""
    layers = getattr(model, "layers", None)
    if layers is None:
        return None
    out = {}
    for fn in expr.atoms(AppliedUndef):
        name = type(fn).__name__
        match = _EDGE.fullmatch(name)
        if match is None:
            return None
        l, i, j = map(int, match.groups())
        if l >= len(layers) or i >= layers[l].in_dim or j >= layers[l].out_dim:
            return None
        out[name] = _edge_function(model, l, i, j)
    return out


def _forward(model: nn.Module) -> Predictor:
    """The model's own forward pass, first output, in float64."""

    def run(X: np.ndarray) -> np.ndarray:
        dtype = next(model.parameters()).dtype
        with torch.no_grad():
            out = model(torch.tensor(X, dtype=dtype))
        return out.reshape(X.shape[0], -1)[:, 0].double().numpy()

    return run


def predictor(expr: sympy.Expr, variables: Sequence[str], model: nn.Module | None) -> Predictor:
    """How to evaluate a discovery's answer ``expr`` of ``variables`` (with ``model``).

    Raises:
        ValueError: ``expr`` has spline edges and no network to evaluate them.
    """
    expr = sympy.sympify(expr)
    if not expr.atoms(AppliedUndef):
        return lambdify_numpy(expr, variables)
    edges = _network_edges(expr, model)
    if edges is not None:
        symbols = [sympy.Symbol(v) for v in variables]
        fn = sympy.lambdify(symbols, expr, modules=[edges, *numpy_modules()])

        def run(X: np.ndarray) -> np.ndarray:
            with np.errstate(all="ignore"):
                out = np.asarray(fn(*[X[:, c] for c in range(X.shape[1])]), dtype=np.float64)
            return np.broadcast_to(out, (X.shape[0],)).copy()

        return run
    if model is None:
        raise ValueError("the formula has spline edges and there is no network to evaluate them")
    return _forward(model)
