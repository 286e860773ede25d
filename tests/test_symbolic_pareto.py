"""The Pareto front of candidate formulas (physkan.symbolic.pareto) and the noise scope."""

from __future__ import annotations

import math

import sympy

from physkan.symbolic.pareto import ParetoFront, complexity, current_front, front_scope, offer
from physkan.symbolic.simplify import current_noise, noise_scope, snap_to_data

x, y = sympy.symbols("x y")


def test_complexity_counts_nodes() -> None:
    assert complexity(x) == 1
    assert complexity(x + y) == 3  # Add, x, y
    assert complexity(sympy.sin(x) * y) == 4  # Mul, sin, x, y
    assert complexity(sympy.exp(sympy.sin(sympy.pi * x) + y**2)) > complexity(x * y)


def test_front_keeps_non_dominated_simplest_first() -> None:
    front = ParetoFront()
    front.add(x, 1.0, "a")
    front.add(x + y, 0.5, "b")
    front.add(x * y + sympy.sin(x), 0.6, "dominated")  # more complex and worse than x + y
    front.add(x * y + sympy.sin(x) + y**2, 1e-9, "best")
    rows = front.front()
    assert [c.source for c in rows] == ["a", "b", "best"]
    assert [c.complexity for c in rows] == sorted(c.complexity for c in rows)
    assert all(a.test_rmse > b.test_rmse for a, b in zip(rows, rows[1:]))
    assert front.best() is not None and front.best().source == "best"
    assert len(front) == 4 and len(front.candidates()) == 4


def test_choose_is_simplest_within_tolerance_of_best() -> None:
    front = ParetoFront()
    front.add(x, 1.0)
    front.add(x + y, 1e-7)
    front.add(x + y + 1e-9 * sympy.sin(x * y), 1e-8)
    assert front.choose(0.0).formula == x + y + 1e-9 * sympy.sin(x * y)
    assert front.choose(1e-6).formula == x + y
    assert front.choose(10.0).formula == x
    assert ParetoFront().choose(1.0) is None


def test_refuses_spline_edges_and_keeps_smaller_rmse_of_duplicates() -> None:
    front = ParetoFront()
    phi = sympy.Function("phi_0_0_0")
    assert front.add(phi(x) + y, 0.1) is None
    assert front.add("not an ( expression", 0.1) is None
    front.add(x * y, 0.3)
    front.add(x * y, 0.1)
    front.add(x * y, 0.2)
    assert [c.test_rmse for c in front.front()] == [0.1]
    front.add(x + 1, float("nan"))  # not finite: kept as inf, never on the front
    assert all(c.formula != x + 1 for c in front.front())
    assert front.as_json() == [{"formula": "x*y", "complexity": 3, "test_rmse": 0.1}]


def test_front_scope_and_offer() -> None:
    assert current_front() is None
    offer(x, 1.0)  # no scope: a no-op
    outer, inner = ParetoFront(), ParetoFront()
    with front_scope(outer):
        offer(x, 1.0, "outer")
        with front_scope(inner):
            assert current_front() is inner
            offer(y, 2.0, "inner")
        assert current_front() is outer
    assert current_front() is None
    assert [c.source for c in outer.front()] == ["outer"]
    assert [c.source for c in inner.front()] == ["inner"]


def test_noise_aware_snapping() -> None:
    """On noisy data a snap that stays within the noise level is kept; without the noise
    level the same snap is refused (it worsens the fit of the noisy samples)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    X = torch.rand(400, 1, generator=gen, dtype=torch.float64) * 2 + 1
    clean = 1.5 * X[:, 0] ** 2
    noisy = clean + 1e-3 * float(clean.std()) * torch.randn(400, generator=gen, dtype=torch.float64)
    sq = X[:, 0] ** 2
    c_ls = float((sq @ noisy) / (sq @ sq))  # the least-squares constant of the noisy samples
    assert c_ls != 1.5
    fitted = sympy.Float(c_ls) * x**2
    kw = {"rel_slack": 0.0, "abs_slack": 0.0, "try_zero": False}
    assert snap_to_data(fitted, ["x"], X, noisy, noise=0.0, **kw) == fitted  # any snap costs
    assert snap_to_data(fitted, ["x"], X, noisy, noise=1e-3, **kw) == sympy.Rational(3, 2) * x**2
    # a wrong snap (1.7 -> 2, or 3/2) is far beyond the noise level: refused even with noise
    wrong = snap_to_data(sympy.Float(1.7) * x**2, ["x"], X, noisy, noise=1e-3, tolerances=(0.2,), **kw)
    assert wrong not in (2 * x**2, sympy.Rational(3, 2) * x**2)
    assert abs(float(wrong / x**2) - 1.7) < 1e-12
    assert current_noise() == 0.0
    with noise_scope(1e-3):
        assert current_noise() == 1e-3
        assert snap_to_data(fitted, ["x"], X, noisy, **kw) == sympy.Rational(3, 2) * x**2
    assert current_noise() == 0.0
    assert math.isfinite(current_noise())
