"""Discovery strategy of ``type = "kepler"``: conserved quantities from a feature dictionary.

A quantity ``Q = sum_j c_j phi_j(z)`` is conserved iff ``grad Q . f = 0``. On the sampled
states this is the linear system ``M c = 0`` with ``M[i, j] = grad phi_j(z_i) . f(z_i)``;
its (numerical) null space holds every conserved quantity in the span of the dictionary.
A reduced row-echelon basis of the null space gives sparse quantities, whose coefficients
are snapped to small rationals. Each is then checked with
:func:`physkan.physics.verify.conserved_quantities_check`, and the known quantities
(energy, ``L``, ``A_x``, ``A_y``) must lie in the span of the found ones.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import sympy

from physkan.discover import Discovery
from physkan.physics.verify import conserved_quantities_check
from physkan.problems import Dataset, ProblemSpec

from .system import KeplerSystem

__all__ = ["discover_kepler", "feature_dictionary"]


def feature_dictionary(system: KeplerSystem) -> list[sympy.Expr]:
    """Monomials of degree 1-3 in the state plus ``1/r``, ``x/r``, ``y/r``."""
    syms = system.symbols()
    feats: list[sympy.Expr] = []
    for degree in (1, 2, 3):
        for combo in itertools.combinations_with_replacement(syms, degree):
            feats.append(sympy.Mul(*combo))
    x, y = syms[0], syms[1]
    r = sympy.sqrt(x**2 + y**2)
    return [*feats, 1 / r, x / r, y / r]


def _derivative_matrix(feats: list[sympy.Expr], syms: list[sympy.Symbol], z: np.ndarray,
                       f: np.ndarray) -> np.ndarray:  # fmt: skip
    cols = []
    for phi in feats:
        grad = sympy.lambdify(syms, [sympy.diff(phi, s) for s in syms], modules="numpy")
        g = np.stack([np.broadcast_to(v, z.shape[:1]) for v in grad(*z.T)], 1)
        cols.append((g * f).sum(1))
    return np.stack(cols, 1)


def _rref_rows(null: np.ndarray, tol: float = 1e-8) -> np.ndarray:
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


def _snap(value: float) -> sympy.Expr:
    if abs(value) < 1e-6:
        return sympy.Integer(0)
    frac = Fraction(value).limit_denominator(12)
    if abs(float(frac) - value) < 1e-4 * max(1.0, abs(value)):
        return sympy.Rational(frac.numerator, frac.denominator)
    return sympy.Float(value, 8)


def _in_span(found: list[sympy.Expr], truth: sympy.Expr, syms: list[sympy.Symbol],
             z: np.ndarray) -> bool:  # fmt: skip
    if not found:
        return False

    def values(expr: sympy.Expr) -> np.ndarray:
        out = sympy.lambdify(syms, expr, modules="numpy")(*z.T)
        return np.broadcast_to(np.asarray(out, dtype=float), z.shape[:1])

    basis = np.stack([values(q) for q in found], 1)
    target = values(truth)
    coef, *_ = np.linalg.lstsq(basis, target, rcond=None)
    return float(np.linalg.norm(basis @ coef - target)) <= 1e-6 * float(np.linalg.norm(target))


def discover_kepler(spec: ProblemSpec, data: Dataset, report: Callable[[str], None]) -> Discovery:
    """Find the conserved quantities of a Kepler problem (see module docstring)."""
    system = spec.system
    assert isinstance(system, KeplerSystem)
    syms = system.symbols()
    feats = feature_dictionary(system)
    report(f"building the {len(feats)}-feature derivative matrix")
    z, f = data.x_train.numpy(), data.extras["f_train"].numpy()
    m = _derivative_matrix(feats, syms, z, f)
    scale = np.linalg.norm(m, axis=0)
    scale[scale == 0] = 1.0
    _, sv, vt = np.linalg.svd(m / scale, full_matrices=True)
    sv = np.concatenate([sv, np.zeros(vt.shape[0] - sv.size)])
    null_dim = int((sv < 1e-9 * sv[0]).sum())
    report(f"null space of dimension {null_dim}; extracting sparse quantities")
    null = (vt[vt.shape[0] - null_dim :] / scale) if null_dim else np.zeros((0, len(feats)))
    quantities = []
    for row in _rref_rows(null):
        expr = sum((_snap(c) * phi for c, phi in zip(row, feats, strict=True)), sympy.Integer(0))
        if expr != 0:
            quantities.append(sympy.expand(expr))
    ranges = [(float(lo), float(hi)) for lo, hi in zip(z.min(0), z.max(0), strict=True)]
    check = conserved_quantities_check(quantities, system.dynamics_exprs(), syms, ranges) \
        if quantities else {"residuals": []}  # fmt: skip
    conserved = all(r["conserved"] for r in check["residuals"])
    z_test = data.x_test.numpy()
    truths = system.quantity_exprs()
    missing = [name for name, q in truths.items() if not _in_span(quantities, q, syms, z_test)]
    recovered = bool(quantities) and conserved and not missing
    why = (f"{len(quantities)} conserved quantities found; energy, angular momentum and the "
           "Laplace-Runge-Lenz vector lie in their span") if recovered else (
           f"conserved={conserved}; not in the span: {', '.join(missing) or '-'}")  # fmt: skip
    metrics = {"null_space_dim": float(null_dim), "n_features": float(len(feats)),
               "smallest_kept_singular_value": float(sv[len(feats) - null_dim - 1]) if null_dim < len(feats) else 0.0}  # fmt: skip
    outputs = [f"Q{i}" for i in range(len(quantities))]
    return Discovery(
        problem=spec.name, type=spec.type, variables=list(system.state), outputs=outputs,
        formulas=quantities, recovered=recovered, recovery=why, metrics=metrics, seconds=0.0,
    )  # fmt: skip
