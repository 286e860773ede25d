"""The interpret API (issue 17): fast, right defaults and one set of conventions.

Measured on f = x0*x1 + sin(x2) with an unused x3 (tests/_interp_model.py: a pruned
``[4, [1, 1], 1]`` MultKAN whose spline edges approximate f, as training would leave them).
"""

from __future__ import annotations

import math
import time

import pytest
import sympy
import torch
from _interp_model import samples, spline_network, truth

from physkan.interpret import (
    build_tree,
    find_symmetries,
    kan_for_peaks,
    peak_tasks,
    run_continual,
    test_symmetry,
)
from physkan.kan import MultKAN
from physkan.symbolic import (
    auto_symbolic,
    fix_symbolic,
    mixes_transcendentals,
    model_formula,
    snap_constants,
    snap_to_data,
    snap_value,
    suggest_edge,
)

X0, X1, X2 = sympy.symbols("x0 x1 x2", real=True)


def _f(z: torch.Tensor) -> torch.Tensor:
    return z[:, 0] * z[:, 1] + torch.sin(z[:, 2])


def test_auto_symbolic_defaults_recover_formula_fast() -> None:
    model, x = spline_network(), samples()
    y = truth(x)
    start = time.perf_counter()
    report = auto_symbolic(model, x, y=y)  # default library, no compositions, refit on
    seconds = time.perf_counter() - start
    assert report.complete and sorted(c.name for c in report.fixed) == ["sin", "x", "x", "x", "x"]
    assert report.rmse < report.rmse_before_refit  # the built-in refit polished the constants
    (expr,) = model_formula(model, x, y).expressions
    assert sympy.simplify(expr - (X0 * X1 + sympy.sin(X2))) == 0, expr
    assert seconds < 60, seconds  # ~3 s on an idle core; generous for a loaded CI machine


def test_simplest_function_within_tolerance_wins() -> None:
    from physkan.symbolic import choose_candidate
    from physkan.symbolic.fit import AffineFit, Candidate

    def cand(name: str, r2: float, score: float = 0.0) -> Candidate:
        return Candidate(name, AffineFit(1, 0, 1, 0, r2, name), score)

    order = {"x": 0, "x^2": 1, "sin": 2, "sqrt": 5, "tan": 9}
    # sqrt fits a hair better than sin: equally complex, within tolerance -> the prior (sin)
    assert choose_candidate([cand("sqrt", 0.99995), cand("sin", 0.9999)], order).name == "sin"
    # tan (complexity 3) is never preferred to an equally good sin
    assert choose_candidate([cand("tan", 0.99999), cand("sin", 0.9999)], order).name == "sin"
    # but a clearly better fit wins over a simpler, poor one
    assert choose_candidate([cand("x", 0.95), cand("sin", 0.9999)], order).name == "sin"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.5000001, sympy.Rational(1, 2)), (3.14159265, sympy.pi), (1.5707963, sympy.pi / 2),
     (-2.0000004, sympy.Integer(-2)), (1.4142136, sympy.sqrt(2))],
)
def test_snap_prefers_short_constants(value: float, expected: sympy.Expr) -> None:
    assert snap_value(value) == expected


def test_snap_never_invents_numerology() -> None:
    for value in (22 / (7 * math.pi), 25 / (8 * math.pi), 39 / (5 * math.e)):
        for tol in (1e-4, 1e-3):
            got = snap_value(value, tolerance=tol)
            assert got is None or got in (sympy.Integer(1), sympy.Integer(3)), (value, got)
    assert snap_value(22 / (7 * math.pi), tolerance=1e-3) == 1
    x = sympy.Symbol("x")
    assert not mixes_transcendentals(snap_constants(sympy.Float(math.pi) * x * sympy.exp(-x)))
    assert mixes_transcendentals(sympy.pi * sympy.exp(-1) * x)
    # on data: 1.0004*x for y = x snaps to x, never 22*x/(7*pi)
    X = torch.linspace(-1, 1, 50, dtype=torch.float64)[:, None]
    assert snap_to_data(sympy.Float(22 / (7 * math.pi)) * x, ["x"], X, X[:, 0]) == x


def test_symmetry_specific_combination() -> None:
    x = samples(300)
    prod = lambda z: z[:, 0] * z[:, 1]  # noqa: E731
    assert test_symmetry(prod, x, ["x0", "x1"], combination="x0*x1")
    assert not test_symmetry(prod, x, ["x0", "x1"], combination="x0 + x1")
    assert test_symmetry(_f, x, ["x0", "x1"], combination="x0*x1")
    assert not test_symmetry(_f, x, ["x0", "x2"], combination="x0 + x2")
    radial = lambda z: torch.exp(-(z[:, 0] ** 2 + z[:, 1] ** 2)) + z[:, 2]  # noqa: E731
    assert test_symmetry(radial, x, ["x0", "x1"], combination="x0**2 + x1**2")
    # the old form tests the generalized symmetry g(h(x0, x1), x2) it documents
    assert test_symmetry(_f, x, ["x0", "x1"]) and not test_symmetry(_f, x, ["x0", "x2"])
    with pytest.raises(ValueError, match="trivially"):
        test_symmetry(prod, x, ["x0", "x1"])  # no other used input: no hypothesis to test
    with pytest.raises(ValueError, match="combination"):
        test_symmetry(_f, x, ["x0", "x1"], combination="x0 + x2")
    with pytest.warns(DeprecationWarning, match="names"):
        assert test_symmetry(_f, x, [0, 1], combination="x0*x1")


def test_tree_shows_offset_products_and_omits_unused_inputs() -> None:
    x = samples(300)
    tree = build_tree(lambda z: z[:, 0] * z[:, 1] + 3, x)
    assert tree.kind == "mul" and abs(tree.offset - 3) < 1e-6, str(tree)
    assert tree.variables == ["x0", "x1"]  # x2, x3 unused: not in the tree
    assert "×" in tree.formula() and "+ 3" in tree.formula()
    tree = build_tree(_f, x)
    assert tree.kind == "add" and "x3" not in str(tree)
    assert tree.formula() == "[x0 × x1] + x2"  # no offset below a sum (its constant is arbitrary)
    tree = build_tree(lambda z: (z[:, 0] * z[:, 1] + 3) * torch.exp(z[:, 2]), x)
    assert tree.kind == "mul" and any(c.kind == "mul" and c.offset for c in tree.children), str(tree)
    assert find_symmetries(_f, x) == [[0, 1]]  # no trivial groups made by the unused x3


def test_one_argument_order_and_naming() -> None:
    model, x = spline_network(), samples(200)
    assert model.variables == ["x0", "x1", "x2", "x3"]
    assert MultKAN([3, 1]).variables == ["x0", "x1", "x2"]
    top = suggest_edge(model, x, 0, 2, 0)[0]
    fit = fix_symbolic(model, x, 0, 2, 0, top.name)
    assert fit.name == "sin" and fit.r2 > 0.9999
    old = spline_network()
    with pytest.warns(DeprecationWarning, match="fix_symbolic"):
        legacy = fix_symbolic(old, 0, 2, 0, "sin", x)
    assert (legacy.a, legacy.b, legacy.c) == pytest.approx((fit.a, fit.b, fit.c))
    formula = model_formula(model, allow_numeric=True, snap=False)
    assert {s.name for s in formula.expressions[0].free_symbols} <= {"x0", "x1", "x2"}


def test_continual_learning_is_exported() -> None:
    res = run_continual(kan_for_peaks(grid=30), peak_tasks(n_peaks=3, n_per_task=60), steps=20,
                        optimizer="lbfgs")
    assert len(res.errors) == 3 and max(res.errors[-1]) < 0.05
