"""Tests of the affine symbolic fit and the candidate ranking (physkan.symbolic.fit)."""

from __future__ import annotations

import math

import pytest
import sympy
import torch

from physkan.symbolic.fit import (
    AffineFit,
    affine_fit,
    fit_coefficients_closed_form,
    score_candidate,
    suggest_symbolic,
)
from physkan.symbolic.library import get_symbolic

X = torch.linspace(-1.0, 1.0, 1000, dtype=torch.float64)


def test_sin_exact_recovery_with_affine_params() -> None:
    y = 2 * torch.sin(3 * X + 1) - 0.5
    fit = affine_fit(X, y, "sin")
    assert fit.name == "sin"
    assert fit.r2 > 0.9999
    assert fit.a == pytest.approx(3.0, abs=1e-4)
    assert fit.b == pytest.approx(1.0, abs=1e-4)
    assert fit.c == pytest.approx(2.0, abs=1e-4)
    assert fit.d == pytest.approx(-0.5, abs=1e-4)


@pytest.mark.parametrize(
    ("name", "a", "b", "c", "d"),
    [
        ("tanh", 4.0, 0.0, 1.0, 0.0),
        ("gaussian", 2.0, 0.5, 1.5, -0.3),
        ("arctan", 2.5, -1.0, 0.7, 0.2),
        ("cos", 2.0, 0.3, -1.2, 0.1),
        ("sin", 2.0, 0.3, 1.2, 0.1),
        ("sin", 2.0, -0.3, -1.2, 0.1),  # written as 1.2 sin(-2x + 0.3) it gets a > 0
    ],
)
def test_identifiable_functions_recover_params(
    name: str, a: float, b: float, c: float, d: float
) -> None:
    fn = get_symbolic(name)
    y = c * fn.torch_fn(a * X + b) + d
    fit = affine_fit(X, y, name)
    assert fit.r2 > 0.9999
    assert (fit.a, fit.b, fit.c, fit.d) == pytest.approx((a, b, c, d), abs=1e-4)


@pytest.mark.parametrize(
    ("name", "truth", "lo", "hi"),
    [
        ("x^2", lambda x: 3 * (x - 0.2) ** 2 + 1, -1.0, 1.0),
        ("x^3", lambda x: 0.5 * (x + 0.3) ** 3, -1.0, 1.0),
        ("log", lambda x: torch.log(2 * x + 3), -1.0, 1.0),
        ("sqrt", lambda x: 2 * torch.sqrt(x + 1.5) - 1, -1.0, 1.0),
        ("1/x", lambda x: 1 / (x + 2), -1.0, 1.0),
        ("1/x^2", lambda x: 0.3 / (x - 2) ** 2, -1.0, 1.0),
        ("arcsin", lambda x: torch.asin(0.8 * x), -1.0, 1.0),
        ("arctanh", lambda x: torch.atanh(0.5 * x + 0.2), -1.0, 1.0),
        ("exp", lambda x: 1e-3 * torch.exp(x), 5.0, 9.0),
        ("sin", lambda x: torch.sin(40 * x), 0.0, 0.1),
    ],
)
def test_exact_shapes_reach_high_r2(name: str, truth, lo: float, hi: float) -> None:
    x = torch.linspace(lo, hi, 500, dtype=torch.float64)
    y = truth(x)
    fit = affine_fit(x, y, name)
    assert fit.r2 > 0.9999, fit
    fn = get_symbolic(name)
    lo_u, hi_u = sorted((fit.a * lo + fit.b, fit.a * hi + fit.b))
    assert bool(fn.interval_ok(torch.tensor(lo_u), torch.tensor(hi_u))), fit
    torch.testing.assert_close(fit(x), y, rtol=1e-4, atol=1e-4 * float(y.abs().max()))


def test_linear_is_plain_regression() -> None:
    fit = affine_fit(X, 3 * X + 2, "x")
    assert (fit.a, fit.b) == (1.0, 0.0)
    assert fit.c == pytest.approx(3.0, abs=1e-12)
    assert fit.d == pytest.approx(2.0, abs=1e-12)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)


def test_domain_restricted_fit_stays_legal() -> None:
    x = torch.linspace(-5.0, -1.0, 300, dtype=torch.float64)
    fit = affine_fit(x, torch.log(-x), "log")
    assert fit.r2 > 0.9999
    assert min(fit.a * -5.0 + fit.b, fit.a * -1.0 + fit.b) > 0


def test_constant_y_and_zero_function() -> None:
    y = torch.full_like(X, 1.7)
    for name in ("sin", "0", "x", "log"):
        fit = affine_fit(X, y, name)
        assert fit.r2 == 1.0 and fit.c == 0.0 and fit.d == pytest.approx(1.7)
        assert torch.isfinite(fit(X)).all()
    ranked = suggest_symbolic(X, y)
    assert ranked[0].name == "0"
    assert affine_fit(X, torch.sin(X), "0").r2 == 0.0


def test_degenerate_inputs() -> None:
    x = 1.0 + 1e-15 * torch.arange(50, dtype=torch.float64)
    fit = affine_fit(x, torch.randn(50, generator=torch.Generator().manual_seed(0)), "sin")
    assert math.isfinite(fit.r2) and 0.0 <= fit.r2 <= 1.0
    xs = X.clone()
    ys = torch.sin(2 * X)
    xs[3], ys[10] = float("nan"), float("inf")
    assert affine_fit(xs, ys, "sin").r2 > 0.9999
    with pytest.raises(ValueError, match="same number"):
        affine_fit(X, X[:10], "sin")
    with pytest.raises(ValueError, match="at least 2"):
        affine_fit(torch.tensor([1.0]), torch.tensor([2.0]), "sin")


def test_no_legal_parameters_gives_constant_fit() -> None:
    fit = affine_fit(X, X**2, "arcsin", a_range=(50.0, 60.0), b_range=(50.0, 60.0))
    assert fit.c == 0.0 and fit.r2 == 0.0


def test_float32_input_and_determinism() -> None:
    x = torch.linspace(-2, 2, 400)
    y = torch.tanh(1.5 * x - 0.5)
    f1, f2 = affine_fit(x, y, "tanh"), affine_fit(x, y, "tanh")
    assert f1 == f2
    assert f1.r2 > 0.9999


def test_closed_form_batched() -> None:
    f = torch.stack([X, X**2, torch.zeros_like(X)])
    c, d, r2 = fit_coefficients_closed_form(f, 2 * X**2 - 1)
    assert c.shape == d.shape == r2.shape == (3,)
    assert c[1] == pytest.approx(2.0) and d[1] == pytest.approx(-1.0) and r2[1] == pytest.approx(1)
    assert r2[0] == pytest.approx(0.0, abs=1e-12)
    assert (c[2], r2[2]) == (0.0, 0.0)


def test_to_sympy() -> None:
    fit = AffineFit(a=3.0, b=1.0, c=2.0, d=-0.5, r2=1.0, name="sin")
    x = sympy.Symbol("x")
    expr = fit.to_sympy(x)
    assert expr.free_symbols == {x}
    assert float(expr.subs(x, 0.3)) == pytest.approx(2 * math.sin(1.9) - 0.5)
    assert AffineFit(0.0, 0.5, 0.0, 1.5, 1.0, "log").to_sympy(x) == sympy.Float(1.5)


def test_score_formula() -> None:
    assert score_candidate(1.0, 2, 0.8) == pytest.approx(-(1.6 + 0.2 * math.log2(1e-5)))
    assert score_candidate(0.0, 0, 0.8) == pytest.approx(-0.2 * math.log2(1 + 1e-5))
    assert score_candidate(1.5, 1) == score_candidate(1.0, 1)
    assert score_candidate(0.99, 1) > score_candidate(0.99, 2)


@pytest.mark.parametrize(
    ("truth", "best"),
    [
        (lambda x: 2 * torch.sin(3 * x + 1) - 0.5, "sin"),
        (lambda x: 3 * (x - 0.2) ** 2 + 1, "x^2"),
        (lambda x: 0.5 * torch.exp(2 * x), "exp"),
        (lambda x: torch.tanh(4 * x), "tanh"),
        (lambda x: -2 * x + 1, "x"),
    ],
)
def test_suggest_ranks_truth_first(truth, best: str) -> None:
    ranked = suggest_symbolic(X, truth(X), topk=4)
    assert len(ranked) == 4
    assert ranked[0].name == best
    assert ranked[0].fit.r2 > 0.9999
    scores = [c.score for c in ranked]
    assert scores == sorted(scores, reverse=True)
    assert all(c.name == c.fit.name for c in ranked)


def test_suggest_library_and_threshold() -> None:
    y = torch.sin(2 * X)
    ranked = suggest_symbolic(X, y, ["x", "x^2", "sin", "exp"], topk=0, r2_threshold=0.99)
    names = [c.name for c in ranked]
    assert names[0] == "sin" and "x^2" not in names
    assert all(c.fit.r2 >= 0.99 for c in ranked)
    by_map = suggest_symbolic(X, y, {"sin": get_symbolic("sin")})
    assert [c.name for c in by_map] == ["sin"]


