"""Is a discovered formula the ground truth? Symbolic check first, dense numeric check second.

:func:`equivalent` compares ``found`` and ``truth`` (sympy expressions or strings):

1. Both are brought to the same symbols (matched by name to ``variables``; strings are read
   by :func:`physkan.symbolic.parse.parse_expression`, and every symbol is made
   ``real=True`` internally so sympy can prove e.g. ``sqrt(x**2) == Abs(x)``). If ``found``
   uses a symbol that is not a variable, the answer is "not equivalent" with that reason.
2. Symbolic: ``simplify(found - truth) == 0`` (or, with ``up_to``, a constant offset /
   constant ratio). Skipped for expressions with more than ``_SIMPLIFY_MAX_OPS`` operations
   so it cannot hang. A symbolic failure is not conclusive; the numeric check decides.
3. Numeric: ``n_points`` uniform random points (seeded) in ``ranges`` (default ``(0.5, 2)``
   for every variable: positive, away from 0, so ``log``/``sqrt``/``1/x`` are defined).
   Points where either side is not finite are dropped; fewer than ``max(10, n_points/10)``
   remaining is reported as inconclusive (not equivalent, method ``"none"``).

   * ``"exact"``: ``err_i = |found_i - truth_i| / max(|truth_i|, 1e-3·rms(truth))``
     (absolute if truth is identically 0); equivalent iff ``max err <= rtol``.
   * ``"offset"``: ``found = truth + c``; ``c = mean(found - truth)``,
     ``err = max|found - truth - c| / std(truth)``.
   * ``"scale_offset"``: ``found = s·truth + c`` with ``s != 0`` (Lagrangians are defined up to
     scale and additive constant); ``s, c`` by least squares,
     ``err = max|found - s·truth - c| / (|s|·std(truth))``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import sympy

from physkan.symbolic.parse import lambdify_numpy, parse_expression, real_symbols

__all__ = ["Equivalence", "equivalent", "parse_expression"]

_SIMPLIFY_MAX_OPS = 80
_DEFAULT_RANGE = (0.5, 2.0)


@dataclass(frozen=True)
class Equivalence:
    """Verdict of :func:`equivalent`.

    Attributes:
        equivalent: the verdict.
        method: ``"symbolic"`` (sympy proved it), ``"numeric"`` (dense sampling decided) or
            ``"none"`` (could not compare: unknown symbols, too few valid points...).
        reason: a human-readable why, e.g. the worst point when not equivalent.
        max_rel_error: the numeric error measure (see module docstring), if computed.
        scale, offset: ``s`` and ``c`` of ``found ≈ s·truth + c`` for ``up_to`` modes.
    """

    equivalent: bool
    method: str
    reason: str
    max_rel_error: float | None
    scale: float | None = None
    offset: float | None = None

    def __bool__(self) -> bool:
        return self.equivalent


def _names(variables: Sequence[str | sympy.Symbol]) -> list[str]:
    return [v.name if isinstance(v, sympy.Symbol) else str(v) for v in variables]


def _to_expr(obj, variables: Sequence[str | sympy.Symbol]) -> sympy.Expr:
    """String or sympy object → expression over real symbols (for sympy's proofs).

    Strings are read by :func:`physkan.symbolic.parse.parse_expression` (unknown names
    become symbols, reported afterwards as "not among the variables"); every symbol is then
    made real, matched by name.
    """
    if isinstance(obj, str):
        obj = parse_expression(obj, variables, strict=False)
    return real_symbols(sympy.sympify(obj))


def _foreign_symbols(expr: sympy.Expr, names: Sequence[str]) -> list[str]:
    return sorted({s.name for s in expr.free_symbols if getattr(s, "name", None) not in names})


def _symbolic_check(
    found: sympy.Expr, truth: sympy.Expr, up_to: str
) -> tuple[bool, float | None, float | None]:
    """(proved, scale, offset): sympy-only proof, guarded against big expressions."""
    if sympy.count_ops(found) + sympy.count_ops(truth) > _SIMPLIFY_MAX_OPS:
        return False, None, None
    try:
        diff = found - truth  # identical trees cancel here; no simplify (~50-150 ms the first time)
        diff = diff if diff == 0 else sympy.simplify(diff)
        if diff == 0:
            return True, 1.0, 0.0
        if up_to in ("offset", "scale_offset") and not diff.free_symbols and diff.is_finite:
            return True, 1.0, float(diff)
        if up_to == "scale_offset" and not truth.is_constant():
            ratio = sympy.simplify(found / truth)
            if not ratio.free_symbols and ratio.is_finite and ratio != 0:
                return True, float(ratio), 0.0
    except Exception:  # noqa: BLE001 - sympy can fail in many ways; numeric check decides
        return False, None, None
    return False, None, None


def _sample(
    names: Sequence[str], ranges: Mapping[str, tuple[float, float]] | None, n: int, seed: int
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cols = []
    for name in names:
        lo, hi = (ranges or {}).get(name, _DEFAULT_RANGE)
        cols.append(rng.uniform(float(lo), float(hi), size=n))
    return np.stack(cols, axis=1) if cols else np.zeros((n, 0))


def _point_text(names: Sequence[str], row: np.ndarray) -> str:
    return ", ".join(f"{n}={v:.4g}" for n, v in zip(names, row, strict=True))


def equivalent(
    found: sympy.Expr | str,
    truth: sympy.Expr | str,
    variables: Sequence[str | sympy.Symbol],
    ranges: Mapping[str, tuple[float, float]] | None = None,
    *,
    rtol: float = 1e-6,
    n_points: int = 2000,
    seed: int = 0,
    up_to: Literal["exact", "scale_offset", "offset"] = "exact",
) -> Equivalence:
    """Decide whether ``found`` equals ``truth`` (see the module docstring for the method).

    Args:
        found, truth: sympy expressions or formula strings.
        variables: the independent variables (names or symbols; matched by name).
        ranges: sampling box per variable name; missing ones use ``(0.5, 2)``.
        rtol: tolerance on the error measure.
        n_points: number of random points; seed: their seed.
        up_to: ``"exact"``, ``"offset"`` (additive constant) or ``"scale_offset"``.
    """
    if up_to not in ("exact", "scale_offset", "offset"):
        raise ValueError(f"up_to must be 'exact', 'offset' or 'scale_offset', got {up_to!r}")
    names = _names(variables)
    try:
        f_expr, t_expr = _to_expr(found, variables), _to_expr(truth, variables)
    except (ValueError, sympy.SympifyError) as exc:
        return Equivalence(False, "none", f"cannot read the formulas: {exc}", None)
    for label, e in (("found", f_expr), ("truth", t_expr)):
        extra = _foreign_symbols(e, names)
        if extra:
            verb = "depends" if len(extra) == 1 else "depend"
            return Equivalence(
                False, "none",
                f"{label} {verb} on {', '.join(extra)} which is not among the variables "
                f"({', '.join(names) or 'none'})", None,
            )  # fmt: skip
    proved, scale, offset = _symbolic_check(f_expr, t_expr, up_to)
    if proved:
        keep = up_to != "exact"
        return Equivalence(
            True, "symbolic", "sympy simplified the difference to "
            + ("0" if offset in (None, 0.0) and scale in (None, 1.0) else "a constant"),
            0.0, scale if keep else None, offset if keep else None,
        )  # fmt: skip
    return _numeric_check(f_expr, t_expr, names, ranges, rtol, n_points, seed, up_to)


def _numeric_check(
    f_expr: sympy.Expr,
    t_expr: sympy.Expr,
    names: list[str],
    ranges: Mapping[str, tuple[float, float]] | None,
    rtol: float,
    n_points: int,
    seed: int,
    up_to: str,
) -> Equivalence:
    X = _sample(names, ranges, n_points, seed)
    try:
        fv = lambdify_numpy(f_expr, names)(X)
        tv = lambdify_numpy(t_expr, names)(X)
    except Exception as exc:  # noqa: BLE001 - unsupported functions etc.
        return Equivalence(False, "none", f"numeric evaluation failed: {exc}", None)
    ok = np.isfinite(fv) & np.isfinite(tv)
    need = max(10, n_points // 10)
    if int(ok.sum()) < need:
        return Equivalence(
            False, "none",
            f"only {int(ok.sum())} of {n_points} sample points give finite values for both "
            f"formulas (need {need}); check the ranges", None,
        )  # fmt: skip
    X, fv, tv = X[ok], fv[ok], tv[ok]
    if up_to == "exact":
        return _exact_verdict(fv, tv, X, names, rtol)
    return _affine_verdict(fv, tv, X, names, rtol, with_scale=up_to == "scale_offset")


def _exact_verdict(
    fv: np.ndarray, tv: np.ndarray, X: np.ndarray, names: list[str], rtol: float
) -> Equivalence:
    rms = float(np.sqrt(np.mean(tv**2)))
    floor = 1e-3 * rms if rms > 0 else 1.0
    err = np.abs(fv - tv) / np.maximum(np.abs(tv), floor)
    worst = int(np.argmax(err))
    max_err = float(err[worst])
    if max_err <= rtol:
        return Equivalence(
            True, "numeric",
            f"max relative error {max_err:.2e} <= rtol {rtol:.1e} over {len(tv)} points", max_err,
        )  # fmt: skip
    return Equivalence(
        False, "numeric",
        f"max relative error {max_err:.2e} at {_point_text(names, X[worst])} "
        f"(found {fv[worst]:.6g}, truth {tv[worst]:.6g})", max_err,
    )  # fmt: skip


def _affine_verdict(
    fv: np.ndarray, tv: np.ndarray, X: np.ndarray, names: list[str], rtol: float, *,
    with_scale: bool,
) -> Equivalence:  # fmt: skip
    t_std = float(np.std(tv))
    if with_scale:
        if t_std <= 1e-300:
            return Equivalence(False, "none", "truth is constant on the sampled points; the "
                               "scale is undetermined", None)  # fmt: skip
        tc = tv - tv.mean()
        s = float(np.dot(tc, fv - fv.mean()) / np.dot(tc, tc))
        c = float(fv.mean() - s * tv.mean())
    else:
        s, c = 1.0, float(np.mean(fv - tv))
    resid = fv - (s * tv + c)
    denom = abs(s) * t_std if t_std > 0 else max(float(np.max(np.abs(tv))), 1.0)
    if denom <= 1e-300 or not math.isfinite(denom):
        return Equivalence(False, "numeric", "found does not vary with truth (scale ≈ 0)",
                           None, s, c)  # fmt: skip
    err = np.abs(resid) / denom
    worst = int(np.argmax(err))
    max_err = float(err[worst])
    what = f"found ≈ {s:.6g}·truth + {c:.6g}" if with_scale else f"found ≈ truth + {c:.6g}"
    if max_err <= rtol:
        return Equivalence(True, "numeric", f"{what}; max residual / truth spread {max_err:.2e} "
                           f"<= rtol {rtol:.1e} over {len(tv)} points", max_err, s, c)  # fmt: skip
    return Equivalence(
        False, "numeric",
        f"best fit {what} leaves max residual / truth spread {max_err:.2e} at "
        f"{_point_text(names, X[worst])}", max_err, s, c,
    )  # fmt: skip
