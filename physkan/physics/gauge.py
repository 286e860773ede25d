"""Canonical form of a Lagrangian: remove the freedoms that do not change the physics.

Two Lagrangians give the same equations of motion when they differ by a scale factor, an
additive constant or a total time derivative ``dG(q)/dt = sum_i dG/dq_i * q_dot_i``. A
learned Lagrangian carries arbitrary amounts of each, so before it is shown or compared we
strip the total-derivative terms, drop the constant, and fix the scale.

For ``n`` degrees of freedom (``L = ½ q̇ᵀM(q)q̇ + A(q)·q̇ − V(q)``):

* **Total derivatives.** The velocity-linear part ``A(q)·q̇`` is split as
  ``A = b + K q + rest``: the constant ``b`` and the symmetric part of ``K`` are the gradient of
  ``b·q + ½ qᵀK_s q`` and are removed, the antisymmetric part (a uniform magnetic field, in the
  symmetric gauge ``B (x ẏ − y ẋ)/2``) is kept; ``rest`` is removed when it is a gradient field
  too (zero curl), kept otherwise.
* **Scale.** ``L`` is divided by the first diagonal mass entry ``M_ii = ∂²L/∂q̇_i²`` that is a
  nonzero constant (so that term reads ``q̇_i²/2``); when every ``M_ii`` depends on ``q``, by
  ``M_11`` at ``q = 0``. A singular or all-zero mass matrix leaves the scale as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy

from physkan.symbolic.simplify import clean_formula, snap_constants

__all__ = ["canonical_lagrangian"]


def _symbols(expr: sympy.Expr, names: Sequence[str]) -> list[sympy.Symbol]:
    by_name = {s.name: s for s in expr.free_symbols if isinstance(s, sympy.Symbol)}
    return [by_name.get(n, sympy.Symbol(n, real=True)) for n in names]


def _split_total_derivative(
    expr: sympy.Expr, qs: list[sympy.Symbol], vs: list[sympy.Symbol]
) -> tuple[sympy.Expr, sympy.Expr]:
    """``(rest, gauge)`` with ``gauge = sum_i a_i(q) q_dot_i`` when the ``a_i`` are a gradient."""
    coeffs: dict[sympy.Symbol, sympy.Expr] = {}
    rest = sympy.Integer(0)
    for term in sympy.Add.make_args(sympy.expand(expr)):
        deps = [v for v in vs if term.has(v)]
        if len(deps) == 1:
            coeff = sympy.cancel(term / deps[0])
            if not coeff.has(*vs):
                coeffs[deps[0]] = coeffs.get(deps[0], 0) + coeff
                continue
        rest += term
    coeffs = _drop_linear_gradient(coeffs, qs, vs)
    gauge = sum((c * v for v, c in coeffs.items()), sympy.Integer(0))
    for a, (qa, va) in enumerate(zip(qs, vs)):
        for qb, vb in list(zip(qs, vs))[a + 1 :]:
            curl = sympy.diff(coeffs.get(va, 0), qb) - sympy.diff(coeffs.get(vb, 0), qa)
            if sympy.simplify(curl) != 0:
                return rest + gauge, sympy.Integer(0)  # not a total derivative: keep it
    return rest, gauge


def _drop_linear_gradient(
    coeffs: dict[sympy.Symbol, sympy.Expr], qs: list[sympy.Symbol], vs: list[sympy.Symbol]
) -> dict[sympy.Symbol, sympy.Expr]:
    """Keep only the antisymmetric part of the affine part ``b + K q`` of ``A(q)``."""
    zero = {q: 0 for q in qs}
    K = [[sympy.diff(coeffs.get(v, 0), q).subs(zero) for q in qs] for v in vs]
    b = [sympy.sympify(coeffs.get(v, 0)).subs(zero) for v in vs]
    if any(k.free_symbols or not k.is_finite for row in [*K, b] for k in row):
        return coeffs  # A is not smooth at q = 0: leave it whole
    out = {}
    for i, v in enumerate(vs):
        a = sympy.expand(coeffs.get(v, sympy.Integer(0)))
        affine = b[i] + sum((K[i][j] * q for j, q in enumerate(qs)), sympy.Integer(0))
        rest = sympy.expand(a - affine)
        anti = sum(((K[i][j] - K[j][i]) / 2 * q for j, q in enumerate(qs)), sympy.Integer(0))
        out[v] = sympy.expand(anti + rest)
    return out


def _scale(rest: sympy.Expr, qs: list[sympy.Symbol], vs: list[sympy.Symbol]) -> sympy.Expr:
    """The mass used to fix the scale (see the module docstring); 1 when there is none."""
    at_rest = {v: 0 for v in vs}
    for v in vs:
        m = sympy.diff(rest, v, 2).subs(at_rest)
        if not m.free_symbols and m != 0 and m.is_finite:
            return m
    m = sympy.diff(rest, vs[0], 2).subs(at_rest).subs({q: 0 for q in qs})
    return m if (not m.free_symbols and m != 0 and m.is_finite) else sympy.Integer(1)


def _pull_out_factors(expr: sympy.Expr) -> sympy.Expr:
    """``sqrt(K - K*x**2)`` -> ``sqrt(K)*sqrt(1 - x**2)``: factor constants out of power bases."""

    def factored(power: sympy.Pow) -> sympy.Expr:
        base = sympy.expand(power.base)
        terms = sympy.Add.make_args(base)
        constants = [t for t in terms if not t.free_symbols]
        pivot = constants[0] if constants else terms[0].as_coeff_Mul()[0]
        if pivot == 0 or not pivot.is_number:
            return power
        pivot = abs(pivot)
        inner = snap_constants(sympy.expand(base / pivot), tolerance=1e-9)
        return pivot**power.exp * inner**power.exp

    return expr.replace(
        lambda t: isinstance(t, sympy.Pow) and t.exp.is_Rational and not t.exp.is_Integer,
        factored,
    )


def canonical_lagrangian(expr: sympy.Expr, coordinates: Sequence[str], *, snap: bool = True) -> sympy.Expr:
    """Strip total derivatives and constants from ``expr`` and scale it to unit mass.

    Args:
        expr: a Lagrangian in the symbols ``q`` and ``q_dot`` named by ``coordinates``.
        snap: round the constants of the result (0.49999 -> 1/2).
    """
    qs = _symbols(expr, list(coordinates))
    vs = _symbols(expr, [f"{q}_dot" for q in coordinates])
    rest, _ = _split_total_derivative(_pull_out_factors(expr), qs, vs)
    rest = sympy.Add(*[t for t in sympy.Add.make_args(rest) if t.has(*qs, *vs)])
    rest = sympy.expand(rest / _scale(rest, qs, vs))
    if snap:
        rest = snap_constants(sympy.expand(rest).evalf(), zero_threshold=1e-10)
    rest = clean_formula(rest)
    return snap_constants(rest) if snap else rest
