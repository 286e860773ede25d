"""Conservation strategy: find ``n_quantities`` independent conserved quantities of ``dz/dt = f(z)``.

The condition ``grad Q . f = 0`` is linear in ``Q``; over a dictionary of the library's
functions of each variable and their pairwise products it becomes a null-space problem
whose sparse basis gives exact quantities (see :mod:`physkan.physics.invariants`). Each is
put in a canonical form (constant dropped, leading coefficient 1) and the set is checked:
``grad Q . f`` must simplify to 0 and the Jacobian must have full rank. (The KAN-trained
route of KAN 2.0 sec. 5.1 is available as :func:`physkan.physics.conservation_loss` with the
Lightning engine; it fits to 1e-7 but its edges do not snap to exact forms reliably yet.)
"""

from __future__ import annotations

from collections.abc import Callable

import sympy
import torch
from torch import Tensor

from physkan.physics.losses import _quantity_gradients
from physkan.problems import Dataset, ProblemSpec
from physkan.strategies.base import Discovery, Reporter
from physkan.strategies.common import sample_ranges
from physkan.symbolic.parse import lambdify_torch
from physkan.symbolic.simplify import clean_formula, snap_constants

__all__ = ["canonical_quantity", "discover_conservation"]


def _unit_gradients(fn: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    """Normalised gradients ``(N, d)`` of a scalar quantity (no graph kept)."""
    g = _quantity_gradients(fn, z.detach())[:, 0].detach()
    return g / (torch.linalg.vector_norm(g, dim=1, keepdim=True) + 1e-8)


def canonical_quantity(expr: sympy.Expr, *, snap: bool = True) -> sympy.Expr:
    """A conserved quantity up to affine freedom: expanded, no constant, first coefficient 1."""
    expr = sympy.expand(expr)
    terms = [t for t in sympy.Add.make_args(expr) if t.free_symbols]
    if not terms:
        return sympy.Integer(0)
    expr = sympy.Add(*terms)
    lead = sorted(terms, key=sympy.default_sort_key)[0]
    coeff, _ = lead.as_coeff_Mul()
    if coeff != 0:
        expr = sympy.expand(expr / coeff)
    if snap:
        expr = snap_constants(expr)
    return clean_formula(expr)


def feature_dictionary(state: list[sympy.Symbol], library: list[str] | None) -> list[sympy.Expr]:
    """Library functions of each state variable plus all pairwise products of variables."""
    from physkan.physics.invariants import monomials
    from physkan.symbolic.library import resolve_library

    feats: list[sympy.Expr] = []
    for fn in resolve_library(library or ["x", "x^2"]).values():
        if fn.name == "0":
            continue
        for s in state:
            expr = fn.sympy_fn(s)
            if expr.free_symbols and expr not in feats:
                feats.append(expr)
    for expr in monomials(state, (2,)):
        if expr not in feats:
            feats.append(expr)
    return feats


def discover_conservation(spec: ProblemSpec, data: Dataset, say: Reporter) -> Discovery:
    """Conserved quantities as the sparse null space of ``grad Q . f = 0`` over a dictionary.

    The dictionary is the ``[discover].library`` applied to every state variable plus all
    pairwise products (what a ``[d, [0, m], 1]`` MultKAN with symbolic edges can express).
    Independent quantities are taken greedily from the sparse (row-echelon) null-space basis
    and verified symbolically. With ``[model] kind = "s2kan"`` an S2KAN is trained on the
    conservation loss instead (:mod:`physkan.strategies.s2kan_physics`).
    """
    from physkan.physics.invariants import null_space_quantities
    from physkan.physics.verify import conserved_quantities_check

    if spec.model.kind == "s2kan":
        from physkan.strategies.s2kan_physics import discover_conservation_s2kan

        return discover_conservation_s2kan(spec, data, say)
    system = spec.system
    names = list(system.state)
    syms = [sympy.Symbol(n, real=True) for n in names]
    feats = feature_dictionary(syms, spec.discover.library)
    say(f"solving grad Q . f = 0 over {len(feats)} features")
    z, f = data.x_train.numpy(), data.extras["f_train"].numpy()
    candidates, info = null_space_quantities(feats, syms, z, f)
    candidates = sorted((canonical_quantity(q, snap=spec.discover.snap) for q in candidates),
                        key=lambda q: (sympy.count_ops(q), sympy.default_sort_key(q)))  # fmt: skip
    ranges = [sample_ranges(spec, names)[n] for n in names]
    found: list[sympy.Expr] = []
    for q in candidates:
        if len(found) == system.n_quantities:
            break
        check = conserved_quantities_check(found + [q], system.dynamics_exprs(), syms, ranges)
        if check["ok"]:
            found.append(q)
    recovered = len(found) == system.n_quantities
    why = (f"{len(found)} independent exactly conserved quantities (grad Q . f = 0 symbolically, "
           f"full-rank Jacobian) from a {info['null_space_dim']:.0f}-dimensional null space")  # fmt: skip
    if not recovered:
        why += f"; wanted {system.n_quantities}"
    metrics = {**_residuals(found, names, data), **info}
    return Discovery(
        problem=spec.name, type=spec.type, variables=names,
        outputs=[f"H{i + 1}" for i in range(len(found))], formulas=found, recovered=recovered,
        recovery=why, metrics=metrics, seconds=0.0, model=None,
    )  # fmt: skip


def _residuals(found: list[sympy.Expr], state: list[str], data: Dataset) -> dict[str, float]:
    """Test-set conservation residual ``max |f_hat . grad_hat H|`` of each quantity."""
    z, f = data.x_test, data.extras["f_test"]
    fhat = f / (torch.linalg.vector_norm(f, dim=1, keepdim=True) + 1e-12)
    worst = 0.0
    for expr in found:
        unit = _unit_gradients(lambdify_torch(expr, state), z)
        worst = max(worst, float((unit * fhat).sum(1).abs().max()))
    return {"test_rmse": worst, "max_conservation_residual": worst, "n_found": float(len(found))}
