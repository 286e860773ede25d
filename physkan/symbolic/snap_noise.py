"""Noise-aware constant snapping: refit every constant, then snap each one to the shortest
exact number that the noisy data still allow.

On noisy targets (``[data].noise`` > 0) a fitted constant is off from its true value by
about its standard error, so a fixed relative snapping tolerance either snaps too little
(``cos(1.0002*theta)``, a tiny additive ``- 4.7e-6`` left in) or picks a wrong short
number (``cos(7*pi*theta/22)`` for ``cos(theta)``). :func:`snap_to_noise` decides each snap
by a likelihood-ratio (chi-square) test instead:

1. :func:`open_constants`: products of numbers that contain a float are merged into one
   float (``0.2887*sqrt(3)`` -> ``0.5``), and exact numbers with a long description
   (``7*pi/22``, description length >= :data:`REOPEN_LENGTH`) become floats again, so they
   are judged like the others.
2. Every float becomes a parameter ``c_k``; all of them are refitted together by least
   squares on the training data (``SSE_0``, the best fit of the structure).
3. Constants are visited from the largest magnitude down; for each, ``0`` and the shortest
   snap candidates (:func:`physkan.symbolic.simplify.snap_candidates`, shortest description
   first, so an integer or ``p/q`` comes before ``7*pi/22``) are tried, the other free
   constants refitted each time. A snap is kept when ``(SSE - SSE_0)/sigma**2`` stays below
   the ``1 - ALPHA`` quantile of a chi-square law with one degree of freedom per fixed
   constant: the fit is no worse than fixing true values would make it. ``sigma`` is the
   noise RMS: ``noise·std(y)``, or the refitted residual RMS when that is larger.
   A candidate must also be shorter than the digits of the constant that the data determine
   (from its standard error), less :data:`DIGIT_MARGIN`: otherwise some ``p/q·pi`` lies
   within the noise by chance. Passes repeat while they fix something (a phase is known to
   more digits once its frequency is fixed).

Everything is float64 numpy; the work is capped in seconds and by the time budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from physkan.budget import Budget, current_budget
from physkan.symbolic.parse import lambdify_arrays
from physkan.symbolic.simplify import (
    DEFAULT_CONSTANTS,
    as_float64_array,
    clean_formula,
    mixes_transcendentals,
    snap_candidates,
)

__all__ = ["ALPHA", "REOPEN_LENGTH", "NoiseSnap", "open_constants", "snap_to_noise"]

#: Level of the chi-square test: a snap is refused when so large an increase of the squared
#: error would happen with probability below ``ALPHA`` had the snapped value been the truth.
ALPHA = 1e-3
#: Exact numbers whose shortest description (:func:`~physkan.symbolic.simplify.description_length`)
#: is at least this long are re-judged as floats (``7*pi/22``: 4; ``1/(4*pi)``: 2.5).
REOPEN_LENGTH = 4.0
#: Relative tolerances at which a constant's shortest snap candidate is looked for.
SNAP_SCALES = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 5e-2)
#: Decimal digits a constant must be known to beyond the description length of its snap.
DIGIT_MARGIN = 1.0
#: Passes over the constants (a pass that fixes none ends the snapping).
MAX_PASSES = 3
#: Formulas with more floats than this are left alone (refits grow with their number).
MAX_CONSTANTS = 16
#: Samples used for the refits (an evenly spread subset beyond it).
MAX_POINTS = 1000

VariableLike = str | sympy.Symbol


@dataclass
class NoiseSnap:
    """The result of :func:`snap_to_noise`.

    Attributes:
        expr: the snapped, cleaned formula (free constants at their refitted values).
        snapped: how many constants were fixed to exact numbers (or 0).
        statistic: ``(SSE - SSE_0)/sigma**2`` of the result (chi-square units).
        sigma: the noise RMS used, in the output's units.
        sse0: ``SSE_0``, the squared error with every constant refitted (``inf``: the
            formula could not be evaluated); sse: that of the result.
        n_constants: constants of the opened formula (fixed or free).
    """

    expr: sympy.Expr
    snapped: int
    statistic: float
    sigma: float
    sse0: float = math.inf
    sse: float = math.inf
    n_constants: int = 0


def _length(value: sympy.Expr) -> float:
    """Description length of an exact number (``inf`` when it is none of the snap family)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.inf
    found = snap_candidates(v, tolerance=1e-12, constants=(*DEFAULT_CONSTANTS,))
    return found[0][0] if found else math.inf


def _merge_numbers(node: sympy.Expr, reopen_length: float, origins: dict[sympy.Float, sympy.Expr]) -> sympy.Expr:
    """``node`` (a Mul or Add) with its number arguments merged into one float when they
    hold a float, or when their exact value is long to write (see :data:`REOPEN_LENGTH`;
    ``origins`` then maps the new float to that exact value)."""
    nums = [a for a in node.args if a.is_number]
    if not nums:
        return node
    rest = [a for a in node.args if not a.is_number]
    merged = node.func(*nums)
    has_float = merged.has(sympy.Float)
    if has_float and len(nums) == 1:
        return node
    if not has_float:
        length = _length(merged)
        if merged.is_Integer or length < reopen_length or math.isinf(length):
            return node
    value = complex(merged)
    if value.imag != 0.0 or not math.isfinite(value.real):
        return node
    number = sympy.Float(value.real)
    if not has_float:
        origins[number] = merged
    return node.func(number, *rest)


def _open(expr: sympy.Expr, reopen_length: float, origins: dict[sympy.Float, sympy.Expr]) -> sympy.Expr:
    if expr.is_Atom:
        return expr
    args = tuple(_open(a, reopen_length, origins) for a in expr.args)
    node = expr.func(*args) if args != expr.args else expr
    if isinstance(node, (sympy.Mul, sympy.Add)):
        return _merge_numbers(node, reopen_length, origins)
    return node


def open_constants(expr: sympy.Expr, *, reopen_length: float = REOPEN_LENGTH,
                   origins: dict[sympy.Float, sympy.Expr] | None = None) -> sympy.Expr:  # fmt: skip
    """``expr`` with number products/sums holding a float merged into one float
    (``0.2887*sqrt(3)*m`` -> ``0.5*m``) and long exact numbers turned into floats
    (``cos(7*pi*theta/22)`` -> ``cos(0.9996*theta)``); integers and short numbers
    (``pi/2``, ``1/(4*pi)``) and exponents are kept. ``origins``, when given, receives
    each float made from an exact number, mapped to that number."""
    return _open(sympy.sympify(expr), reopen_length, origins if origins is not None else {})


class _Fit:
    """Least-squares refits of a formula's constants ``c_k`` on ``(X, y)``."""

    def __init__(self, template: sympy.Expr, variables: Sequence[VariableLike], params: list[sympy.Symbol],
                 X: np.ndarray, y: np.ndarray) -> None:  # fmt: skip
        self.fn = lambdify_arrays(template, [*variables, *params])
        self.cols = [X[:, i] for i in range(X.shape[1])]
        self.y = y
        self.big = 1e6 * (float(np.std(y)) + float(np.abs(y).mean()) + 1.0)

    def residual(self, values: Sequence[float]) -> np.ndarray:
        r = self.fn(*self.cols, *values) - self.y
        return np.where(np.isfinite(r), r, self.big)

    def sse(self, values: Sequence[float]) -> float:
        r = self.fn(*self.cols, *values) - self.y
        return float(r @ r) if np.all(np.isfinite(r)) else math.inf

    def refit(self, values: np.ndarray, free: list[int]) -> tuple[np.ndarray, float]:
        """Least squares over the ``free`` entries of ``values`` (the others fixed)."""
        start = self.sse(values)
        if not free or not math.isfinite(start):
            return values, start

        def res(sub: np.ndarray) -> np.ndarray:
            full = values.copy()
            full[free] = sub
            return self.residual(full)

        from scipy.optimize import least_squares  # scipy loads on first use (CLI start-up)

        try:
            sol = least_squares(res, values[free], method="trf", x_scale="jac", max_nfev=30 * (len(free) + 1))
        except (ValueError, FloatingPointError, OverflowError):
            return values, start
        out = values.copy()
        out[free] = sol.x
        got = self.sse(out)
        return (out, got) if got <= start else (values, start)

    def digits(self, values: np.ndarray, sigma2: float, free: list[int]) -> dict[int, float]:
        """How many decimal digits of each ``free`` constant the data determine (the others
        held fixed): ``log10(|c_k| / stderr_k)``, with ``stderr`` from the least-squares
        covariance ``sigma2·(JᵀJ)⁻¹`` (forward differences); 0 where it is undetermined."""
        base = self.residual(values)
        cols = []
        for k in free:
            h = 1e-7 * max(abs(float(values[k])), 1e-3)
            step = values.copy()
            step[k] += h
            cols.append((self.residual(step) - base) / h)
        J = np.stack(cols, 1)
        with np.errstate(all="ignore"):
            var = sigma2 * np.diag(np.linalg.pinv(J.T @ J))
            out = np.log10(np.abs(values[free]) / np.sqrt(np.maximum(var, 1e-300)))
        return {k: float(d) if np.isfinite(d) and d > 0 else 0.0 for k, d in zip(free, out)}


def _options(value: float, digits: float, origin: sympy.Expr | None = None) -> list[sympy.Expr]:
    """``0`` and the shortest snap candidate at each scale of :data:`SNAP_SCALES`, shortest
    description first (ties: the closer one). A candidate must be shorter than the digits
    the data determine, less :data:`DIGIT_MARGIN` (at least 1: an integer is always
    allowed): a noisy constant known to 2 digits has some 4-digit ``p/q·pi`` near it by
    chance, which explains nothing. ``origin``, the exact number a re-judged constant was
    (``3/(20*pi)``), is always one of the options, at its own length."""
    longest = max(1.0, digits - DIGIT_MARGIN)
    ranked: dict[sympy.Expr, tuple[float, float]] = {sympy.Integer(0): (0.0, 1.0)}
    if origin is not None:
        ranked[origin] = (_length(origin), abs(float(origin) - value) / (abs(value) or 1.0))
    for tol in SNAP_SCALES:
        found = snap_candidates(value, tolerance=tol, constants=DEFAULT_CONSTANTS)
        if found and found[0][0] <= longest:
            ranked.setdefault(found[0][2], found[0][:2])
    return sorted(ranked, key=lambda e: ranked[e])


def snap_to_noise(
    expr: sympy.Expr,
    variables: Sequence[VariableLike],
    X,
    y,
    *,
    noise: float,
    alpha: float = ALPHA,
    seconds: float = 3.0,
) -> NoiseSnap:
    """Snap the constants of ``expr`` as far as targets with relative noise ``noise`` allow.

    Args:
        expr: a closed-form formula of ``variables``.
        X: ``(N, n_vars)`` inputs; y: ``(N,)`` noisy targets (the training data).
        noise: relative noise level (fraction of ``std(y)``, as ``[data].noise``), > 0.
        alpha: level of the chi-square test of each snap (see the module docstring).
        seconds: wall-clock cap (the time budget in force also ends it).

    Returns:
        A :class:`NoiseSnap`; ``expr`` comes back (cleaned, floats refitted) when nothing can
        be snapped, and unchanged when it cannot be evaluated on the data.
    """
    Xa, ya = as_float64_array(X), as_float64_array(y).reshape(-1)
    if Xa.ndim == 1:
        Xa = Xa[:, None]
    if len(ya) > MAX_POINTS:
        keep = np.linspace(0, len(ya) - 1, MAX_POINTS).round().astype(int)
        Xa, ya = Xa[keep], ya[keep]
    origins: dict[sympy.Float, sympy.Expr] = {}
    opened = open_constants(expr, origins=origins)
    floats = sorted(opened.atoms(sympy.Float), key=lambda f: (-abs(float(f)), float(f)))
    sigma = float(noise) * float(np.std(ya))
    if not floats or len(floats) > MAX_CONSTANTS or len(ya) <= len(floats) or not sigma > 0:
        sse = _plain_sse(opened, variables, Xa, ya)
        return NoiseSnap(sympy.sympify(expr), 0, 0.0, sigma, sse, sse, len(floats))
    params = [sympy.Dummy(f"c{k}") for k in range(len(floats))]
    template = opened.xreplace(dict(zip(floats, params)))
    fit = _Fit(template, variables, params, Xa, ya)
    values, sse0 = fit.refit(np.array([float(f) for f in floats]), list(range(len(params))))
    if not math.isfinite(sse0):
        return NoiseSnap(sympy.sympify(expr), 0, 0.0, sigma, n_constants=len(floats))
    sigma2 = max(sigma**2, sse0 / (len(ya) - len(params)))
    state = _State(values, {}, 0.0, sse0, [origins.get(f) for f in floats])
    stop = _Stop(time.perf_counter() + seconds, current_budget())
    for _ in range(MAX_PASSES):  # a snap can sharpen the others (a phase once its frequency is fixed)
        if not _snap_pass(fit, state, sse0, sigma2, alpha, template, params, stop):
            break
    return _result(template, params, state, sigma2, sse0)


@dataclass
class _State:
    """Where the snapping stands: constant values, the exact ones fixed so far (by index),
    the chi-square statistic, the squared error and the exact numbers re-judged."""

    values: np.ndarray
    fixed: dict[int, sympy.Expr]
    stat: float
    sse: float
    origins: list[sympy.Expr | None]  # the exact number each constant was, if re-judged


@dataclass
class _Stop:
    """The wall-clock deadline (``time.perf_counter``) and the budget in force."""

    deadline: float
    budget: Budget

    def now(self) -> bool:
        return time.perf_counter() > self.deadline or self.budget.expired()


def _snap_pass(fit: _Fit, state: _State, sse0: float, sigma2: float, alpha: float, template: sympy.Expr,
               params: list[sympy.Symbol], stop: _Stop) -> bool:  # fmt: skip
    """One pass over the free constants (largest first): fix each to its shortest option the
    chi-square test accepts (updating ``state``). Returns whether some constant was fixed."""
    from scipy.stats import chi2

    changed = False
    for k in range(len(params)):
        if k in state.fixed:
            continue
        free = [j for j in range(len(params)) if j not in state.fixed]
        digits = fit.digits(state.values, sigma2, free)
        for option in _options(float(state.values[k]), digits[k], state.origins[k]):
            if stop.now():
                return False
            trial = state.values.copy()
            trial[k] = float(option)
            trial, trial_sse = fit.refit(trial, [j for j in free if j != k])
            t = (trial_sse - sse0) / sigma2
            fixed = {**state.fixed, k: option}
            if t <= chi2.isf(alpha, len(fixed)) and _sane(template, params, trial, fixed):
                state.values, state.fixed, state.stat, state.sse = trial, fixed, max(t, 0.0), trial_sse
                changed = True
                break
    return changed


def _plain_sse(expr: sympy.Expr, variables: Sequence[VariableLike], X: np.ndarray, y: np.ndarray) -> float:
    try:
        r = lambdify_arrays(expr, variables)(*[X[:, i] for i in range(X.shape[1])]) - y
    except (TypeError, ValueError, KeyError, ZeroDivisionError):
        return math.inf
    return float(r @ r) if np.all(np.isfinite(r)) else math.inf


def _substitute(template: sympy.Expr, params: list[sympy.Symbol], values: np.ndarray,
                fixed: dict[int, sympy.Expr]) -> sympy.Expr:  # fmt: skip
    return template.xreplace({p: fixed.get(k, sympy.Float(float(values[k]))) for k, p in enumerate(params)})


def _sane(template: sympy.Expr, params: list[sympy.Symbol], values: np.ndarray,
          fixed: dict[int, sympy.Expr]) -> bool:  # fmt: skip
    """The snapped formula is a finite formula that multiplies no two transcendentals."""
    expr = _substitute(template, params, values, fixed)
    return not expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo) and not mixes_transcendentals(expr)


def _result(template: sympy.Expr, params: list[sympy.Symbol], state: _State, sigma2: float,
            sse0: float) -> NoiseSnap:  # fmt: skip
    expr = clean_formula(_substitute(template, params, state.values, state.fixed))
    return NoiseSnap(expr, len(state.fixed), state.stat, math.sqrt(sigma2), sse0, state.sse, len(params))
