"""Tests of constant snapping, cleanup and export (physkan.symbolic.simplify)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import sympy
import torch

from physkan.symbolic.simplify import (
    clean_formula,
    formula_error,
    lambdify_torch,
    snap_constants,
    snap_to_data,
    snap_value,
    to_latex,
    to_text,
)

x, y = sympy.symbols("x y")
pi, E = sympy.pi, sympy.E


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.49999, sympy.Rational(1, 2)),
        (2.0000003, sympy.Integer(2)),
        (-1.000001, sympy.Integer(-1)),
        (0.333331, sympy.Rational(1, 3)),
        (-2.49999, sympy.Rational(-5, 2)),
        (3.14159, pi),
        (1.5708, pi / 2),
        (6.2832, 2 * pi),
        (-0.785398, -pi / 4),
        (1.41421, sympy.sqrt(2)),
        (0.3989423, 1 / sympy.sqrt(2 * pi)),
        (0.0, sympy.Integer(0)),
    ],
)
def test_snap_value(value: float, expected: sympy.Expr) -> None:
    got = snap_value(value)
    assert got is not None
    assert sympy.simplify(got - expected) == 0


@pytest.mark.parametrize("value", [0.123456, 1234.5678, 7.3891, 0.61803, 2.71828, float("nan")])
def test_snap_value_keeps_non_simple(value: float) -> None:
    assert snap_value(value) is None


def test_snap_value_tolerance_and_zero_threshold() -> None:
    assert snap_value(0.4999) is None
    assert snap_value(0.4999, tolerance=1e-3) == sympy.Rational(1, 2)
    assert snap_value(0.5001, max_denominator=1, tolerance=1e-3) is None
    assert snap_value(3e-7, zero_threshold=1e-6) == 0


def test_snap_constants_in_expression() -> None:
    expr = 2.0000003 * sympy.sin(3.14159 * x) + 0.49999 * y**2.0 + 0.123456
    snapped = snap_constants(expr)
    assert snapped == 2 * sympy.sin(pi * x) + y**2 / 2 + sympy.Float(0.123456)
    assert snap_constants(x + 1) == x + 1


def _data(fn, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(0).uniform(-1.0, 1.0, size=(n, 2))
    return X, fn(X[:, 0], X[:, 1])


def test_snap_to_data_accepts_true_constants() -> None:
    X, target = _data(lambda a, b: 2 * np.sin(np.pi * a) + b**2 / 2)
    raw = 1.99 * sympy.sin(3.1413 * x) + 0.50003 * y**2 + 1e-9 * x**3
    snapped = snap_to_data(raw, ["x", "y"], X, target)
    assert sympy.simplify(snapped - (2 * sympy.sin(pi * x) + y**2 / 2)) == 0
    assert formula_error(snapped, ["x", "y"], X, target) < 1e-12


def test_snap_to_data_rejects_snaps_the_data_contradict() -> None:
    X, target = _data(lambda a, b: 1.99 * a + 0.3 * b)
    raw = 1.99 * x + 0.3 * y
    assert snap_to_data(raw, ["x", "y"], X, torch.tensor(target)) == 1.99 * x + 3 * y / 10
    assert snap_constants(raw, tolerance=1e-2) == 2 * x + sympy.Rational(3, 10) * y


def test_clean_formula() -> None:
    assert clean_formula(sympy.sin(x) ** 2 + sympy.cos(x) ** 2) == 1
    assert clean_formula(x * (x + 1) - x**2) == x
    assert clean_formula(x + y) == x + y


def test_clean_formula_skips_huge_expressions_quickly() -> None:
    big = sum(sympy.sin(i * x + y) * sympy.exp(x / (i + 1)) for i in range(1, 80))
    start = time.perf_counter()
    assert clean_formula(big) == big
    assert time.perf_counter() - start < 2.0


def test_text_and_latex() -> None:
    expr = 2.345678 * sympy.sin(x) + sympy.Rational(1, 2) * y
    assert to_text(expr) == str(expr)
    assert to_text(expr, digits=3) == "y/2 + 2.35*sin(x)"
    assert "\\sin" in to_latex(expr) and "2.35" in to_latex(expr, digits=3)


def test_lambdify_torch_matches_and_differentiates() -> None:
    expr = (
        sympy.sin(pi * x) * sympy.exp(-(y**2)) + sympy.sqrt(2) * sympy.Abs(x)
        + E * sympy.sign(y) + sympy.log(1 + x**2) + sympy.Rational(1, 3) * y**3
        + sympy.atanh(x / 2) + sympy.Max(x, y)
    )  # fmt: skip
    f = lambdify_torch(expr, ["x", "y"])
    X = torch.tensor([[0.3, -0.7], [-0.5, 0.2], [0.9, 1.1]], dtype=torch.float64)
    got = f(X)
    ref = sympy.lambdify((x, y), expr, modules="numpy")(X[:, 0].numpy(), X[:, 1].numpy())
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12)
    X32 = X.float().requires_grad_(True)
    out = f(X32)
    assert out.dtype == torch.float32 and out.shape == (3,)
    (g,) = torch.autograd.grad(out.sum(), X32)
    assert torch.isfinite(g).all()


def test_lambdify_torch_string_constant_and_order() -> None:
    f = lambdify_torch("y - 2*x^2", ["x", "y"])
    X = torch.tensor([[1.0, 5.0], [2.0, 0.0]])
    torch.testing.assert_close(f(X), torch.tensor([3.0, -8.0]))
    const = lambdify_torch(sympy.Integer(3), ["x"])(torch.zeros(4, 1))
    torch.testing.assert_close(const, torch.full((4,), 3.0))
    with pytest.raises(ValueError, match="z"):
        lambdify_torch(x + sympy.Symbol("z"), ["x"])
