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

from collections.abc import Callable

import numpy as np
import sympy

from physkan.discover import Discovery
from physkan.physics.invariants import monomials, null_space_quantities
from physkan.physics.verify import conserved_quantities_check
from physkan.problems import Dataset, ProblemSpec

from .system import KeplerSystem

__all__ = ["discover_kepler", "feature_dictionary"]


def feature_dictionary(system: KeplerSystem) -> list[sympy.Expr]:
    """Monomials of degree 1-3 in the state plus ``1/r``, ``x/r``, ``y/r``."""
    syms = system.symbols()
    feats = monomials(syms, (1, 2, 3))
    x, y = syms[0], syms[1]
    r = sympy.sqrt(x**2 + y**2)
    return [*feats, 1 / r, x / r, y / r]


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
    report(f"solving for conserved quantities in a {len(feats)}-feature dictionary")
    z, f = data.x_train.numpy(), data.extras["f_train"].numpy()
    quantities, metrics = null_space_quantities(feats, syms, z, f)
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
    outputs = [f"Q{i}" for i in range(len(quantities))]
    return Discovery(
        problem=spec.name, type=spec.type, variables=list(system.state), outputs=outputs,
        formulas=quantities, recovered=recovered, recovery=why, metrics=metrics, seconds=0.0,
    )  # fmt: skip
