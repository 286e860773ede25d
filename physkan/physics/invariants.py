"""Conserved quantities as the null space of a linear system over a feature dictionary.

A quantity ``Q = sum_j c_j phi_j(z)`` is conserved under ``dz/dt = f(z)`` iff
``grad Q . f = 0``. On sampled states this is the linear system ``M c = 0`` with
``M[i, j] = grad phi_j(z_i) . f(z_i)``: its null space holds every conserved quantity in
the span of the dictionary. A reduced row-echelon basis of that null space gives sparse
quantities, whose coefficients are snapped to small rationals (Liu et al., "Interpretable
conservation laws as sparse invariants", PRE 2024 -- reference [54] of KAN 2.0).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import sympy

from physkan.symbolic.parse import numpy_modules

__all__ = ["derivative_matrix", "monomials", "null_space_quantities", "rref_rows", "snap_rational"]


def monomials(symbols: Sequence[sympy.Symbol], degrees: Sequence[int] = (1, 2)) -> list[sympy.Expr]:
    """All monomials of the given total degrees in ``symbols``."""
    feats: list[sympy.Expr] = []
    for degree in degrees:
        for combo in itertools.combinations_with_replacement(symbols, degree):
            feats.append(sympy.Mul(*combo))
    return feats


def derivative_matrix(
    feats: Sequence[sympy.Expr], syms: Sequence[sympy.Symbol], z: np.ndarray, f: np.ndarray
) -> np.ndarray:
    """``M[i, j] = grad phi_j(z_i) . f(z_i)``; ``z, f (N, d)`` -> ``(N, len(feats))``."""
    cols = []
    for phi in feats:
        grad = sympy.lambdify(list(syms), [sympy.diff(phi, s) for s in syms], modules=numpy_modules())
        g = np.stack([np.broadcast_to(v, z.shape[:1]) for v in grad(*z.T)], 1)
        cols.append((g * f).sum(1))
    return np.stack(cols, 1)


def rref_rows(null: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    """Reduced row-echelon form of the rows of ``null`` (``(m, d)``), partial pivoting."""
    a = null.copy()
    row = 0
    for col in range(a.shape[1]):
        if row == a.shape[0]:
            break
        pivot = row + int(np.argmax(np.abs(a[row:, col])))
        if abs(a[pivot, col]) < tol:
            continue
        a[[row, pivot]] = a[[pivot, row]]
        a[row] /= a[row, col]
        for other in range(a.shape[0]):
            if other != row:
                a[other] -= a[other, col] * a[row]
        row += 1
    return a[:row]


def snap_rational(value: float, max_denominator: int = 12) -> sympy.Expr:
    """0 below 1e-6, a small rational when within 1e-4 (relative), else an 8-digit float."""
    if abs(value) < 1e-6:
        return sympy.Integer(0)
    frac = Fraction(value).limit_denominator(max_denominator)
    if abs(float(frac) - value) < 1e-4 * max(1.0, abs(value)):
        return sympy.Rational(frac.numerator, frac.denominator)
    return sympy.Float(value, 8)


def null_space_quantities(
    feats: Sequence[sympy.Expr], syms: Sequence[sympy.Symbol], z: np.ndarray, f: np.ndarray,
    *, rtol: float = 1e-9,
) -> tuple[list[sympy.Expr], dict[str, float]]:  # fmt: skip
    """Sparse conserved quantities in the span of ``feats`` and diagnostics of the solve."""
    m = derivative_matrix(feats, syms, z, f)
    scale = np.linalg.norm(m, axis=0)
    scale[scale == 0] = 1.0
    _, sv, vt = np.linalg.svd(m / scale, full_matrices=True)
    sv = np.concatenate([sv, np.zeros(vt.shape[0] - sv.size)])
    null_dim = int((sv < rtol * sv[0]).sum())
    null = (vt[vt.shape[0] - null_dim :] / scale) if null_dim else np.zeros((0, len(feats)))
    quantities = []
    for row in rref_rows(null):
        expr = sum((snap_rational(c) * phi for c, phi in zip(row, feats)), sympy.Integer(0))
        if expr != 0:
            quantities.append(sympy.expand(expr))
    kept = len(feats) - null_dim - 1
    info = {"null_space_dim": float(null_dim), "n_features": float(len(feats)),
            "smallest_kept_singular_value": float(sv[kept]) if kept >= 0 else 0.0}  # fmt: skip
    return quantities, info
