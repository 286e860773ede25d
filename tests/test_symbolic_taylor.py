"""taylor_regime: a library function whose argument hardly moves becomes the polynomial it imitates."""

from __future__ import annotations

import itertools
import math

import sympy

from physkan.strategies.conservation import canonical_quantity
from physkan.symbolic.taylor import taylor_regime

X, P = sympy.symbols("x p", real=True)
BOX = {"x": (-1.0, 1.0), "p": (-1.0, 1.0)}


def test_small_argument_cosine_is_the_energy_it_imitates() -> None:
    """What an S2KAN returned for the oscillator energy on one BLAS path: cos(0.026·x) for x²."""
    found = sympy.sympify(
        "-0.0022575439915519272*p**2 + 6.4687639183066796*cos(0.026419926062174637*x - 1.1981490061468194e-7)"
        " - 6.5945808520234969", locals={"x": X, "p": P},
    )  # fmt: skip
    poly = taylor_regime(found, BOX)
    assert not poly.atoms(sympy.cos)
    assert canonical_quantity(poly) == P**2 + X**2
    two_cosines = sympy.sympify(
        "1121.4031690344757*cos(0.0020065583935810474*p) + 6.4687639182980581*cos(0.02641992210548922*x)"
        " - 1127.9977498864329", locals={"x": X, "p": P},
    )  # fmt: skip
    assert canonical_quantity(taylor_regime(two_cosines, BOX)) == P**2 + X**2


def test_functions_of_a_wide_argument_or_an_unknown_range_stay() -> None:
    expr = sympy.cos(X) + sympy.exp(2 * P)
    assert taylor_regime(expr, BOX) == expr
    small = sympy.cos(sympy.Float(0.01) * X)
    assert taylor_regime(small, {"p": (-1.0, 1.0)}) == small  # x has no range
    nested = sympy.sin(sympy.Float(0.01) * sympy.cos(X))
    assert taylor_regime(nested, BOX) == nested


def test_polynomial_matches_the_function_to_its_truncation_error() -> None:
    expr = 3 * sympy.exp(sympy.Float(0.02) * X + 1) + sympy.sin(sympy.Float(0.03) * P + sympy.Float(0.5))
    poly = taylor_regime(expr, BOX)
    assert not poly.atoms(sympy.exp, sympy.sin) and sympy.Poly(poly, X, P).total_degree() == 2
    f, g = sympy.lambdify([X, P], expr), sympy.lambdify([X, P], poly)
    grid = [i / 10 for i in range(-10, 11)]
    worst = max(abs(f(a, b) - g(a, b)) for a, b in itertools.product(grid, grid))
    # the next Taylor term per function, (a·h)³/3!·max|f'''| with h = 1, plus as much for dropped terms
    bound = 2 * (0.02**3 / 6 * 3 * math.exp(1.02) + 0.03**3 / 6)
    assert 1e-9 < worst < bound, worst
