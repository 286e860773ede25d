"""Sparse discovery with auxiliary inputs (KAN 2.0's ``augment_input``), e.g. constitutive laws.

When a problem file names auxiliary variables (``[discover].augment``, e.g. the determinant
of a deformation gradient), the target is searched as a short linear combination of
monomials (degree <= 3) in the inputs and the auxiliaries. Every subset of up to three
monomials is solved by least squares and the smallest exact one (relative error below
1e-8) wins; coefficients are snapped to simple rationals and the result is verified. If
nothing exact is found, the ordinary KAN regression strategy runs
(:func:`discover_regression_with_augment`, the registered strategy of ``type = "regression"``).
"""

from __future__ import annotations

import itertools

import sympy
import torch

from physkan.linalg import lstsq
from physkan.physics.invariants import monomials, snap_rational
from physkan.problems import Dataset, ProblemSpec
from physkan.problems.errors import ProblemError
from physkan.strategies.base import Discovery, Reporter
from physkan.strategies.regression import _check_regression, discover_regression
from physkan.symbolic.parse import lambdify_torch, parse_expression
from physkan.symbolic.simplify import clean_formula

__all__ = ["discover_augmented", "discover_regression_with_augment", "sparse_monomial_fit"]


def sparse_monomial_fit(features: torch.Tensor, y: torch.Tensor, max_terms: int = 3,
                        rtol: float = 1e-8) -> tuple[tuple[int, ...], torch.Tensor] | None:  # fmt: skip
    """Smallest subset of columns of ``features (N, F)`` (plus an intercept) fitting ``y (N,)``.

    All subsets of one size are solved at once through the normal equations of the
    standardised columns (batched ``(S, size+1, size+1)`` solves). Returns
    ``(columns, coefficients [intercept, c...])`` or ``None``.
    """
    y = y.double()
    scale = float(y.std()) or 1.0
    mean, std = features.mean(0), features.std(0).clamp_min(1e-300)
    a = torch.cat([torch.ones_like(y)[:, None], (features - mean) / std], 1)  # (N, F+1)
    gram, rhs, yy = a.T @ a, a.T @ y, y @ y
    n = y.shape[0]
    for size in range(1, max_terms + 1):
        combos = torch.tensor(list(itertools.combinations(range(1, a.shape[1]), size)))
        idx = torch.cat([torch.zeros(len(combos), 1, dtype=torch.long), combos], 1)  # with intercept
        g = gram[idx[:, :, None], idx[:, None, :]]
        b = rhs[idx]
        sol = torch.linalg.solve(g + 1e-12 * torch.eye(size + 1, dtype=g.dtype), b)
        sse = (yy - (sol * b).sum(1)).clamp_min(0)
        err = (sse / n).sqrt() / scale
        # the normal equations only rank the subsets; the best few are re-solved exactly
        for best in torch.argsort(err)[:5].tolist():
            cols = tuple(int(c) - 1 for c in combos[best])
            exact = torch.cat([torch.ones_like(y)[:, None], features[:, list(cols)]], 1)
            coef = lstsq(exact, y[:, None])[:, 0]
            if float((exact @ coef - y).pow(2).mean().sqrt()) / scale < rtol:
                return cols, coef
    return None


def discover_augmented(spec: ProblemSpec, data: Dataset, say: Reporter) -> Discovery | None:
    """Exact sparse fit over monomials of inputs and auxiliaries; ``None`` if none is exact."""
    names = list(data.inputs)
    syms = [sympy.Symbol(n, real=True) for n in names]
    aux_syms, aux_exprs = [], []
    for name, text in spec.discover.augment.items():
        try:
            aux_exprs.append(parse_expression(text, names))
        except ValueError as exc:
            raise ProblemError(f"discover.augment.{name}: {exc}", source=spec.source) from None
        aux_syms.append(sympy.Symbol(name, real=True))
    feats = monomials(syms + aux_syms, (1, 2, 3))
    say(f"sparse fit over {len(feats)} monomials of {', '.join(names + list(spec.discover.augment))}")
    subs = dict(zip(aux_syms, aux_exprs))
    columns = []
    for phi in feats:
        fn = lambdify_torch(phi.subs(subs), names)
        columns.append(fn(data.x_train).reshape(-1) * torch.ones(data.x_train.shape[0], dtype=torch.float64))
    matrix = torch.stack(columns, 1)
    if not torch.isfinite(matrix).all():
        return None
    formulas = []
    for k in range(len(data.outputs)):
        fit = sparse_monomial_fit(matrix, data.y_train[:, k])
        if fit is None:
            return None
        cols, coef = fit
        expr = snap_rational(float(coef[0]), 36)
        for c, col in zip(coef[1:].tolist(), cols):
            expr += snap_rational(c, 36) * feats[col]
        formulas.append(clean_formula(expr.subs(subs)))
    preds = torch.stack([lambdify_torch(f, names)(data.x_test).reshape(-1) * torch.ones(data.x_test.shape[0], dtype=torch.float64)
                         for f in formulas], 1)  # fmt: skip
    metrics = {"test_rmse": float(((preds - data.y_test) ** 2).mean().sqrt()), "n_features": float(len(feats))}
    recovered, why = _check_regression(spec, formulas, data)
    return Discovery(
        problem=spec.name, type=spec.type, variables=names, outputs=list(data.outputs),
        formulas=formulas, recovered=recovered, recovery=why, metrics=metrics, seconds=0.0,
        symbolic_report=f"auxiliary inputs {dict(spec.discover.augment)}",
    )  # fmt: skip


def discover_regression_with_augment(spec: ProblemSpec, data: Dataset, say: Reporter) -> Discovery:
    """Try the augmented sparse fit first when the problem names auxiliary inputs."""
    if spec.discover.augment:
        result = discover_augmented(spec, data, say)
        if result is not None:
            return result
        say("no exact sparse fit with the auxiliary inputs; running the KAN regression")
    return discover_regression(spec, data, say)
