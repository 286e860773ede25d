"""Turning raw KAN formulas into readable ones: constant snapping, cheap cleanup, export.

* :func:`snap_constants` replaces every sympy ``Float`` by the *shortest* exact number
  within relative ``tolerance`` (description length: integers, then ``p/q`` with small
  ``q``, ``pi`` and small multiples/fractions of ``pi``, ``sqrt(2)``...; see
  :func:`snap_candidates`). Products of two transcendental constants (``pi*exp(-1)``) are
  never produced.
* :func:`snap_to_data` does the same constant by constant, shortest candidate first, but
  keeps a snap only when the formula's error on data does not get worse beyond a small
  slack (and the noise level, :func:`noise_scope`).
* :func:`clean_formula` tries a handful of cheap, safe rewrites and keeps the shortest.
* :func:`to_text`, :func:`to_latex` export the result; :func:`lambdify_numpy` and
  :func:`lambdify_torch` (re-exported from :mod:`physkan.symbolic.parse`, the one formula
  front end) evaluate it.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

import numpy as np
import sympy
from torch import Tensor

from physkan.budget import scoped
from physkan.symbolic.parse import lambdify_numpy, lambdify_torch

__all__ = [
    "DEFAULT_CONSTANTS",
    "NOISE_SNAP_SLACK",
    "as_float64_array",
    "clean_formula",
    "current_noise",
    "description_length",
    "formula_error",
    "lambdify_numpy",
    "lambdify_torch",
    "mixes_transcendentals",
    "noise_scope",
    "snap_candidates",
    "snap_constants",
    "snap_to_data",
    "snap_value",
    "to_latex",
    "to_text",
]

#: Constants a float may be a simple multiple (``p/q·K``) or fraction (``p/(q·K)``) of:
#: ``pi`` and its roots, roots of small integers. ``e`` is not one (it enters formulas
#: through ``exp``; ``39*exp(-1)/5`` is numerology); pass ``constants=`` to add it.
DEFAULT_CONSTANTS: tuple[sympy.Expr, ...] = (
    sympy.pi,
    sympy.pi**2,
    sympy.sqrt(2),
    sympy.sqrt(3),
    sympy.sqrt(sympy.pi),
    sympy.sqrt(2 * sympy.pi),
)

VariableLike = str | sympy.Symbol


# --------------------------------------------------------------------------- snapping


#: Cost (description length) of each constant of :data:`DEFAULT_CONSTANTS`-like lists:
#: ``1 + 0.25·position``, so ``pi`` is cheaper than ``sqrt(2*pi)``.
_CONST_STEP = 0.25

#: ``p/q·K`` and ``p/(q·K)`` use small ``|p| <= _CONST_MAX``, ``q <= _CONST_DEN`` only:
#: ``22/(7*pi)`` or ``4*sqrt(pi)/7`` are numerology, not physics constants.
_CONST_MAX = 8
_CONST_DEN = 4
#: ... except ``pi`` and ``pi**2``, whose physics fractions have larger denominators:
#: ``1/(6*pi)`` (Larmor), ``3/(8*pi)``, ``3/(20*pi)`` (= 3/5 · 1/(4*pi)), ``1/(8*pi**2)``
#: (still ``|p| <= 8``: ``22/(7*pi)`` stays out).
_PI_DEN = 24
_PI_POWERS = (sympy.pi, sympy.pi**2)

#: Transcendental constants that never multiply each other in a snapped formula.
_TRANSCENDENTAL = (sympy.pi, sympy.E)


def _digits(n: int) -> int:
    return len(str(abs(int(n))))


def description_length(p: int, q: int, constant_cost: float = 0.0) -> float:
    """Length of writing ``p/q`` (times a constant of cost ``constant_cost``): the digits of
    ``|p|`` (a bare ``1`` in front of a constant is free) plus those of ``q > 1``."""
    num = 0 if (p in (1, -1) and constant_cost > 0) else _digits(p)
    return num + (_digits(q) if q > 1 else 0) + constant_cost


def snap_candidates(
    value: float,
    *,
    tolerance: float = 1e-4,
    max_denominator: int = 12,
    max_numerator: int = 1000,
    constants: Sequence[sympy.Expr] = DEFAULT_CONSTANTS,
) -> list[tuple[float, float, sympy.Expr]]:
    """Every short exact number within relative ``tolerance`` of ``value``, shortest first.

    Returns ``(description length, relative error, number)`` triples: ``p/q`` (``q <=
    max_denominator``, ``|p| <= max_numerator``) and, for each constant ``K`` (in order,
    cost ``1 + 0.25·position``), ``p/q·K`` and ``p/(q·K)`` with ``|p| <= 8``, ``q <= 4``
    (``q <= 24`` for ``pi`` and ``pi**2``: ``1/(6*pi)``, ``3/(20*pi)``).
    Ties go to the closer number.
    """
    v = float(value)
    if not math.isfinite(v) or v == 0.0:
        return []
    out: dict[sympy.Expr, tuple[float, float, sympy.Expr]] = {}

    def consider(r: float, top: int, den: int, factor: sympy.Expr, cost: float, kv: float) -> None:
        for q in range(1, den + 1):
            p = round(r * q)
            if p == 0 or abs(p) > top or math.gcd(p, q) != 1:
                continue
            err = abs(p / q * kv - v) / abs(v)
            if err <= tolerance:
                num = sympy.Rational(p, q) * factor
                cand = (description_length(p, q, cost), err, num)
                if num not in out or cand[:2] < out[num][:2]:
                    out[num] = cand

    consider(v, max_numerator, max_denominator, sympy.Integer(1), 0.0, 1.0)
    small = min(max_numerator, _CONST_MAX)
    for pos, k in enumerate(constants):
        kv, cost = float(k), 1.0 + _CONST_STEP * pos
        den = _PI_DEN if k in _PI_POWERS else min(max_denominator, _CONST_DEN)
        consider(v / kv, small, den, k, cost, kv)
        consider(v * kv, small, den, 1 / k, cost + 0.5, 1 / kv)
    return sorted(out.values(), key=lambda c: (c[0], c[1]))


def snap_value(
    value: float,
    *,
    tolerance: float = 1e-4,
    max_denominator: int = 12,
    max_numerator: int = 1000,
    constants: Sequence[sympy.Expr] = DEFAULT_CONSTANTS,
    zero_threshold: float = 0.0,
) -> sympy.Expr | None:
    """The shortest exact number within relative ``tolerance`` of ``value``, else ``None``.

    ``0`` if ``|value| <= zero_threshold``; otherwise the first of :func:`snap_candidates`
    (shortest description, then closest): integers and ``p/q`` (``q <= max_denominator``,
    ``|p| <= max_numerator``), small multiples and fractions of the ``constants`` (``pi``,
    ``sqrt(2)``...; ``|p| <= 8``, ``q <= 4`` (``24`` for ``pi``, ``pi**2``), so ``1234.57`` never becomes ``393·pi`` and ``1.0004``
    never ``22/(7·pi)``). Examples: ``0.5000001 → 1/2``, ``3.14159265 → pi``,
    ``1.5708 → pi/2``.
    """
    v = float(value)
    if not math.isfinite(v):
        return None
    if v == 0.0 or abs(v) <= zero_threshold:
        return sympy.Integer(0)
    found = snap_candidates(v, tolerance=tolerance, max_denominator=max_denominator,
                            max_numerator=max_numerator, constants=constants)  # fmt: skip
    return found[0][2] if found else None


def mixes_transcendentals(expr: sympy.Expr) -> bool:
    """Whether some product in ``expr`` multiplies two different transcendental constants
    (``pi*exp(-1)``, ``E/pi``...), which a snap must never invent."""
    for term in sympy.preorder_traversal(sympy.sympify(expr)):
        if isinstance(term, sympy.Mul):
            consts: set[str] = set()
            for f in term.args:
                if f.free_symbols:
                    continue
                if f.has(sympy.pi):
                    consts.add("pi")
                if f.has(sympy.E) or f.atoms(sympy.exp):
                    consts.add("e")
            if len(consts) > 1:
                return True
    return False


def snap_constants(
    expr: sympy.Expr,
    *,
    tolerance: float = 1e-4,
    max_denominator: int = 12,
    constants: Sequence[sympy.Expr] = DEFAULT_CONSTANTS,
    zero_threshold: float = 0.0,
    max_numerator: int = 1000,
) -> sympy.Expr:
    """Replace every ``Float`` in ``expr`` by :func:`snap_value` where one is found.

    Examples: ``0.49999 → 1/2``, ``2.0000003 → 2``, ``3.14159 → pi``, ``1.5708 → pi/2``,
    ``6.2832 → 2*pi``; floats with no simple neighbour are kept. ``x**2.0`` becomes ``x**2``.
    """
    expr = sympy.sympify(expr)
    mapping: dict[sympy.Expr, sympy.Expr] = {}
    for f in sorted(expr.atoms(sympy.Float), key=lambda f: (-abs(float(f)), float(f))):
        snapped = snap_value(
            float(f), tolerance=tolerance, max_denominator=max_denominator,
            max_numerator=max_numerator, constants=constants, zero_threshold=zero_threshold,
        )  # fmt: skip
        if snapped is None:
            continue
        if snapped.has(*_TRANSCENDENTAL) and mixes_transcendentals(
            expr.xreplace({**mapping, f: snapped})
        ):
            continue  # never invent pi·e products
        mapping[f] = snapped
    return expr.xreplace(mapping) if mapping else expr


def formula_error(expr: sympy.Expr, variables: Sequence[VariableLike], X, y) -> float:
    """Root-mean-square error of ``expr`` on data ``X (N, n_vars)``, ``y (N,)`` (``inf`` if
    any prediction is non-finite)."""
    pred = lambdify_numpy(expr, variables)(as_float64_array(X))
    target = as_float64_array(y).reshape(-1)
    if not np.all(np.isfinite(pred)):
        return math.inf
    return float(np.sqrt(np.mean((pred - target) ** 2)))


def as_float64_array(a) -> np.ndarray:
    """A float64 numpy array of an array or a tensor (a tensor is detached and copied to the CPU)."""
    if isinstance(a, Tensor):
        a = a.detach().cpu().double().numpy()
    return np.asarray(a, dtype=np.float64)


#: Share of the noise RMS (``noise·std(y)``) that one snap may add to a fit's RMSE.
NOISE_SNAP_SLACK = 0.1

_NOISE: contextvars.ContextVar[float] = contextvars.ContextVar("physkan_noise", default=0.0)


def current_noise() -> float:
    """The relative noise level of the data being fitted (``[data].noise``; 0 by default)."""
    return _NOISE.get()


def noise_scope(level: float) -> AbstractContextManager[float]:
    """Make ``level`` (fraction of ``std(y)``) what :func:`current_noise` returns inside."""
    return scoped(_NOISE, float(level))


def snap_to_data(
    expr: sympy.Expr,
    variables: Sequence[VariableLike],
    X,
    y,
    *,
    tolerances: Sequence[float] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2),
    max_denominator: int = 12,
    constants: Sequence[sympy.Expr] = DEFAULT_CONSTANTS,
    rel_slack: float = 1e-3,
    abs_slack: float = 1e-9,
    try_zero: bool = True,
    max_passes: int = 3,
    noise: float | None = None,
) -> sympy.Expr:
    """Snap constants one at a time, keeping each snap only if the data still agree.

    Args:
        expr: formula with ``Float`` constants.
        variables: names (or symbols) of the columns of ``X``.
        X: ``(N, n_vars)`` inputs (array or tensor); y: ``(N,)`` targets.
        tolerances: relative snapping tolerances tried from tight to loose per constant.
        rel_slack, abs_slack: a snap is kept when ``rmse_new <= rmse_0·(1 + rel_slack) +
            abs_slack·rms(y)`` where ``rmse_0`` is the error of the unsnapped formula.
        try_zero: also try replacing a constant by 0 (drops negligible terms/shifts).
        noise: relative noise level of ``y`` (fraction of ``std(y)``, as ``[data].noise``;
            ``None``: :func:`current_noise`). A snap may then also cost up to
            ``NOISE_SNAP_SLACK·noise·std(y)`` of RMSE: it must not worsen the fit beyond the
            noise level.

    Constants are visited from largest to smallest magnitude, in up to ``max_passes`` passes
    (a snap rejected early can pass once another constant has been fixed, since errors of
    two constants can partly cancel). Returns the snapped formula.
    """
    expr = sympy.sympify(expr)
    Xa, ya = as_float64_array(X), as_float64_array(y).reshape(-1)
    base = formula_error(expr, variables, Xa, ya)
    if not math.isfinite(base):
        return expr
    allowed = base * (1.0 + rel_slack) + abs_slack * float(np.sqrt(np.mean(ya**2)))
    level = current_noise() if noise is None else float(noise)
    if level > 0:
        allowed += NOISE_SNAP_SLACK * level * float(np.std(ya))
    current = expr
    for _ in range(max_passes):
        before = current
        current = _snap_pass(current, variables, Xa, ya, allowed, tolerances, max_denominator,
                             constants, try_zero)  # fmt: skip
        if current == before:
            break
    return current


def _snap_pass(
    current: sympy.Expr,
    variables: Sequence[VariableLike],
    Xa: np.ndarray,
    ya: np.ndarray,
    allowed: float,
    tolerances: Sequence[float],
    max_denominator: int,
    constants: Sequence[sympy.Expr],
    try_zero: bool,
) -> sympy.Expr:
    """One greedy pass of :func:`snap_to_data` over the floats of ``current``."""
    floats = sorted(current.atoms(sympy.Float), key=lambda f: (-abs(float(f)), float(f)))
    for f in floats:
        if f not in current.atoms(sympy.Float):
            continue
        ranked: dict[sympy.Expr, tuple[float, float]] = {}
        for tol in sorted(tolerances):
            found = snap_candidates(float(f), tolerance=tol, max_denominator=max_denominator,
                                    constants=constants)  # fmt: skip
            if found:
                ranked.setdefault(found[0][2], found[0][:2])
        options = sorted(ranked, key=lambda e: ranked[e])  # shortest description first
        if try_zero and sympy.Integer(0) not in options:
            options.append(sympy.Integer(0))
        for option in options:
            trial = current.xreplace({f: option})
            if trial.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):  # e.g. log(0): not a formula
                continue
            if mixes_transcendentals(trial) and not mixes_transcendentals(current):
                continue
            try:
                err = formula_error(trial, variables, Xa, ya)
            except (TypeError, ValueError, ZeroDivisionError, KeyError):
                continue
            if err <= allowed:
                current = trial
                break
    return current


# --------------------------------------------------------------------------- cleanup


def _has_trig(expr: sympy.Expr) -> bool:
    return expr.has(sympy.sin, sympy.cos, sympy.tan, sympy.sinh, sympy.cosh, sympy.tanh)


def clean_formula(
    expr: sympy.Expr, *, max_ops: int = 200, expand_ops: int = 60, simplify_ops: int = 30
) -> sympy.Expr:
    """Cheap, safe cleanup: returns the shortest (by ``count_ops``) of a few rewrites.

    Tried: ``powsimp``, ``factor_terms`` (always, if ``count_ops <= max_ops``), ``expand``
    (if ``<= expand_ops``), ``trigsimp`` and full ``simplify`` (if ``<= simplify_ops``).
    Expressions above ``max_ops`` are returned unchanged, so this never hangs on big trees.
    Ties keep the earlier candidate (the input first).
    """
    expr = sympy.sympify(expr)
    ops = sympy.count_ops(expr)
    if ops > max_ops:
        return expr
    steps: list[Callable[[sympy.Expr], sympy.Expr]] = [sympy.powsimp, sympy.factor_terms]
    if ops <= expand_ops:
        steps += [sympy.expand, lambda e: sympy.factor_terms(sympy.expand(e))]
    if ops <= simplify_ops:
        if _has_trig(expr):
            steps.append(sympy.trigsimp)
        steps.append(sympy.simplify)
    best, best_ops = expr, ops
    for step in steps:
        try:
            cand = step(expr)
        except Exception:  # noqa: BLE001 - a failed rewrite just is not a candidate
            continue
        cand_ops = sympy.count_ops(cand)
        if cand_ops < best_ops:
            best, best_ops = cand, cand_ops
    return best


def _round_floats(expr: sympy.Expr, digits: int | None) -> sympy.Expr:
    if digits is None:
        return expr
    return expr.xreplace({f: sympy.Float(f, digits) for f in expr.atoms(sympy.Float)})


def to_text(expr: sympy.Expr, *, digits: int | None = None) -> str:
    """Plain-text formula (``sympy.sstr``), floats rounded to ``digits`` significant digits."""
    return sympy.sstr(_round_floats(sympy.sympify(expr), digits))


def to_latex(expr: sympy.Expr, *, digits: int | None = None) -> str:
    """LaTeX formula, floats rounded to ``digits`` significant digits."""
    return sympy.latex(_round_floats(sympy.sympify(expr), digits))
