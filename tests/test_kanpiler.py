"""kanpiler: formula -> fully symbolic MultKAN whose output (and exported formula) is the formula."""

from __future__ import annotations

import random

import numpy as np
import pytest
import sympy
import torch

from physkan.symbolic.compile import kanpiler
from physkan.symbolic.equivalence import equivalent
from physkan.symbolic.formula import model_formula
from physkan.symbolic.parse import lambdify_numpy, parse_expression
from physkan.symbolic.tree import expression_tree

RANGE = (0.5, 2.0)
X, Y, Z = sympy.symbols("x y z", real=True)
_UNARY = [
    sympy.sin, sympy.cos, sympy.exp, sympy.log, sympy.tanh, sympy.atan, sympy.sqrt, sympy.Abs,
    lambda u: u**2, lambda u: u**3, lambda u: 1 / u, lambda u: sympy.asin(u / 8),
]  # fmt: skip


def _rational(rng: random.Random) -> sympy.Rational:
    return sympy.Rational(rng.choice([-3, -2, -1, 1, 2, 3, 5]), rng.choice([1, 2, 4]))


def _candidate(rng: random.Random) -> sympy.Expr:
    """1-3 variables, 1-3 library functions, combined by sums/products with rational coefs."""
    pieces: list[sympy.Expr] = list([X, Y, Z][: rng.randint(1, 3)])
    for _ in range(rng.randint(1, 3)):
        k = rng.randrange(len(pieces))
        arg = _rational(rng) * pieces[k] + (_rational(rng) if rng.random() < 0.5 else 0)
        pieces[k] = rng.choice(_UNARY)(arg)
    while len(pieces) > 1:
        a, b = pieces.pop(), pieces.pop()
        pieces.append(a * b if rng.random() < 0.4 else a + _rational(rng) * b)
    return pieces[0] * _rational(rng) + (_rational(rng) if rng.random() < 0.3 else 0)


def _usable(expr: sympy.Expr, pts: np.ndarray) -> bool:
    vals = lambdify_numpy(expr, ["x", "y", "z"])(pts)
    return bool(np.isfinite(vals).all() and np.abs(vals).max() < 1e3 and np.ptp(vals) > 1e-3)


def random_expressions(n: int = 20, seed: int = 0) -> list[sympy.Expr]:
    """``n`` deterministic random formulas that are finite and non-constant on ``RANGE``."""
    rng = random.Random(seed)
    pts = np.random.default_rng(seed).uniform(*RANGE, size=(500, 3))
    out: list[sympy.Expr] = []
    while len(out) < n:
        expr = _candidate(rng)
        if expr.free_symbols and _usable(expr, pts):
            out.append(expr)
    return out


def _max_rel_error(model, expr: sympy.Expr, names: list[str], n: int = 400) -> float:
    x = torch.empty(n, len(names), dtype=torch.float64).uniform_(*RANGE)
    with torch.no_grad():
        got = model(x)[:, 0].numpy()
    truth = lambdify_numpy(expr, names)(x.numpy())
    scale = np.maximum(np.abs(truth), 1e-3 * np.sqrt(np.mean(truth**2)))
    return float(np.max(np.abs(got - truth) / scale))


def _check_model(model) -> None:
    """Used edges are symbolic with a zero numeric branch; all other edges are masked."""
    for layer in model.layers:
        assert torch.equal(layer.mask, layer.symbolic_mask)
        assert not layer.coef.any() and not layer.scale_base.any()


@pytest.mark.parametrize("k", range(20))
def test_random_library_expressions_round_trip(k: int) -> None:
    expr = random_expressions()[k]
    names = sorted(s.name for s in expr.free_symbols)
    model = kanpiler(names, expr, dtype=torch.float64)
    _check_model(model)
    assert _max_rel_error(model, expr, names) < 1e-6, (expr, model.width_spec)
    x = torch.empty(200, len(names), dtype=torch.float64).uniform_(*RANGE)
    found = model_formula(model, x).expressions[0]
    ranges = dict.fromkeys(names, RANGE)
    assert equivalent(found, expr, names, ranges, n_points=300), (expr, found)


FEYNMAN = [
    (["x", "y"], "x*y", [2, [0, 1]]),
    (["x", "y"], "exp(sin(pi*x) + y**2)", [2, 1, 1]),
    (["q", "q_dot"], "q_dot**2/2 + cos(q)", [2, 1]),
    (["m0", "v", "c"], "m0/sqrt(1 - v**2/c**2)", [3, [1, 1], [0, 1]]),
    (["G", "m1", "m2", "r"], "G*m1*m2/r**2", [4, [0, 1]]),
]


@pytest.mark.parametrize(("names", "text", "width"), FEYNMAN, ids=[f[1] for f in FEYNMAN])
def test_feynman_examples(names: list[str], text: str, width: list) -> None:
    ranges = {n: RANGE for n in names}
    if "c" in names:
        ranges = {"m0": (0.5, 2.0), "v": (0.1, 0.9), "c": (1.0, 2.0)}
    expr = parse_expression(text, names)
    model = kanpiler(names, text, ranges=ranges, dtype=torch.float64)
    _check_model(model)
    assert model.width_spec == width
    assert model.variables == names and model.outputs == ["y"]
    x = torch.stack([torch.empty(300, dtype=torch.float64).uniform_(*ranges[n]) for n in names], 1)
    truth = lambdify_numpy(expr, names)(x.numpy())
    with torch.no_grad():
        got = model(x)[:, 0].numpy()
    assert np.max(np.abs(got - truth) / np.abs(truth)) < 1e-6
    assert equivalent(model_formula(model).expressions[0], expr, names, ranges)
    lo, hi = ranges[names[0]]
    interior = model.layers[0].grid_interior()[0]
    assert interior[0] == pytest.approx(lo, abs=0.05) and interior[-1] == pytest.approx(
        hi, abs=0.05
    )


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("x + sin(x)", 2),  # two functions of x into one node: one moves to its own node
        ("x**6 + x**(1/3)", 2),  # (x^3)^2 and exp(log(x)/3)
        ("exp(-(x + 1)**2)/3", 1),  # one gaussian edge
        ("2**x + x**y", 2),
        ("x*y*z + 1", 1),
        ("sin(x*y)*cos(x*y) + x*y", 3),  # product, then sum
        ("x", 1),
        ("7/2", 1),
    ],
)
def test_special_forms(text: str, depth: int) -> None:
    names = ["x", "y", "z"]
    expr = parse_expression(text, names)
    model = kanpiler(names, expr, dtype=torch.float64)
    assert model.depth == depth, model.width_spec
    assert _max_rel_error(model, expr, names) < 1e-6


def test_mult_arity_two_nests_long_products() -> None:
    names = ["G", "m1", "m2", "r"]
    model = kanpiler(names, "G*m1*m2/r**2", mult_arity=2, dtype=torch.float64)
    assert model.mult_arity == 2 and model.width_spec == [4, [0, 2], [0, 1]]
    assert _max_rel_error(model, parse_expression("G*m1*m2/r**2", names), names) < 1e-6


def test_float32_default_dtype_and_symbols() -> None:
    x, y = sympy.symbols("x y")  # plain (non-real) symbols are matched by name
    model = kanpiler([x, y], sympy.sin(x) * y + 1)
    assert model.layers[0].coef.dtype == torch.float32
    pts = torch.rand(50, 2)
    assert torch.allclose(model(pts)[:, 0], torch.sin(pts[:, 0]) * pts[:, 1] + 1, atol=1e-6)


def test_unsupported_functions_are_named() -> None:
    x = sympy.Symbol("x", real=True)
    with pytest.raises(ValueError, match="besselj"):
        kanpiler([x], sympy.besselj(0, x))
    with pytest.raises(ValueError, match="gamma"):
        kanpiler([x], sympy.gamma(x) + x)
    with pytest.raises(ValueError, match="'sin'.*not in the library"):
        kanpiler(["x"], "sin(x) + x**2", library=["x^2"])
    with pytest.raises(ValueError, match="mult_arity"):
        kanpiler(["x", "y"], "x*y", mult_arity=1)
    with pytest.raises(ValueError, match="not among the variables"):
        kanpiler(["x"], sympy.Symbol("y") * x)


def test_expression_tree_prints() -> None:
    text = str(expression_tree(parse_expression("m0/sqrt(1 - v**2/c**2)", ["m0", "v", "c"])))
    assert "1/sqrt" in text and "x^2" in text and "1/x^2" in text and text.startswith("prod")
