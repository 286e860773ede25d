"""Sparse dictionary regression for one variable: ``y ≈ d + sum_s c_s f_s(x)``.

Some edges (and some transformed targets) are sums of a few library functions of the same
input, e.g. ``r - 2 + 1/r``; one affine-fitted function cannot express that, but a small
subset of the dictionary ``{f_s(x)}`` can. We try every subset of up to ``max_terms``
functions by least squares and return the smallest one that explains ``y`` to a relative
error below ``rtol`` (ties broken by total complexity, then error).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sympy
import torch
from torch import Tensor

from physkan.linalg import lstsq
from physkan.symbolic.library import SymbolicFunction, resolve_library

__all__ = ["SparseFit", "sparse_fit_1d"]


@dataclass(frozen=True)
class SparseFit:
    """Result of :func:`sparse_fit_1d`."""

    names: tuple[str, ...]
    coefficients: tuple[float, ...]
    intercept: float
    relative_error: float

    def to_sympy(self, x: sympy.Expr, library: Mapping[str, SymbolicFunction]) -> sympy.Expr:
        """``intercept + sum_s c_s f_s(x)`` with float coefficients."""
        expr = sympy.Float(self.intercept)
        for name, c in zip(self.names, self.coefficients):
            expr += sympy.Float(c) * library[name].sympy_fn(x)
        return expr


def sparse_fit_1d(
    x: Tensor,
    y: Tensor,
    library: Mapping[str, SymbolicFunction] | Sequence[str] | None = None,
    *,
    max_terms: int = 3,
    rtol: float = 1e-7,
) -> SparseFit | None:
    """Smallest subset of library functions of ``x`` (``(N,)``) whose span fits ``y`` (``(N,)``).

    Returns ``None`` when no subset of up to ``max_terms`` functions reaches ``rtol``.
    """
    lib = dict(library) if isinstance(library, Mapping) else resolve_library(library)
    x64, y64 = x.reshape(-1).double(), y.reshape(-1).double()
    scale = float(y64.std()) or 1.0
    feats: dict[str, Tensor] = {}
    for name, fn in lib.items():
        if name == "0":
            continue
        v = fn.torch_fn(x64)
        if torch.isfinite(v).all() and float(v.std()) > 1e-12:
            feats[name] = v
    names = list(feats)
    ones = torch.ones_like(x64)
    for size in range(1, max_terms + 1):
        best: tuple[float, float, SparseFit] | None = None
        for subset in itertools.combinations(names, size):
            a = torch.stack([ones, *(feats[n] for n in subset)], 1)
            sol = lstsq(a, y64[:, None])[:, 0]
            err = float((a @ sol - y64).pow(2).mean().sqrt()) / scale
            if err < rtol:
                complexity = sum(lib[n].complexity for n in subset)
                fit = SparseFit(tuple(subset), tuple(float(c) for c in sol[1:]), float(sol[0]), err)
                if best is None or (complexity, err) < best[:2]:
                    best = (complexity, err, fit)
        if best is not None:
            return best[2]
    return None
