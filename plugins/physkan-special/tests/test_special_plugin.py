"""physkan-special: torch/sympy agreement, guards and registration."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch
from physkan_special import SPECIAL_FUNCTIONS

from physkan.problems.expressions import lambdify, parse_expression
from physkan.symbolic.library import get_symbolic, resolve_library


@pytest.mark.parametrize("fn", SPECIAL_FUNCTIONS, ids=lambda f: f.name)
def test_torch_matches_sympy(fn) -> None:
    u = sympy.Symbol("u")
    expr = fn.sympy_fn(u)
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    ref = [float(expr.subs(u, float(v)).evalf()) for v in x]
    assert torch.allclose(fn(x), torch.tensor(ref, dtype=torch.float64), atol=1e-10)
    assert fn.complexity > 0


@pytest.mark.parametrize("fn", SPECIAL_FUNCTIONS, ids=lambda f: f.name)
def test_finite_second_derivatives(fn) -> None:
    x = torch.tensor([-2.0, 0.0, 1e-9, 3.0], dtype=torch.float64, requires_grad=True)
    (d1,) = torch.autograd.grad(fn(x).sum(), x, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), x)
    assert torch.isfinite(d1).all() and torch.isfinite(d2).all()


def test_registered_and_usable_in_problem_formulas() -> None:
    assert get_symbolic("erf").name == "erf"
    assert list(resolve_library(["x", "J0", "softplus"])) == ["x", "J0", "softplus"]
    expr = parse_expression("erf(x) + J0(y)", ["x", "y"])
    values = lambdify(expr, ["x", "y"])(np.array([0.5, 1.0]), np.array([0.0, 2.0]))
    assert np.allclose(values, [0.5204998778 + 1.0, 0.8427007929 + 0.2238907791])


def test_j0_derivatives_match_bessel_identities() -> None:
    j0 = get_symbolic("J0")
    x = torch.tensor([0.0, 0.7, 2.5], dtype=torch.float64, requires_grad=True)
    (d1,) = torch.autograd.grad(j0(x).sum(), x, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), x)
    xd = x.detach()
    assert torch.allclose(d1, -torch.special.bessel_j1(xd))
    j1_over_x = torch.where(xd == 0, torch.full_like(xd, 0.5), torch.special.bessel_j1(xd) / xd)
    assert torch.allclose(d2, -(torch.special.bessel_j0(xd) - j1_over_x))


@pytest.mark.recovery
def test_s2kan_edge_uses_the_plugin_function() -> None:
    """A plugin's function joins the S2KAN dictionary by name: on J0 data the edge keeps the
    J0 term and closes its spline (without the entry, the core test keeps the spline)."""
    from physkan.s2kan import s2kan_discover

    x = torch.linspace(0.0, 8.0, 600, dtype=torch.float64)[:, None]
    y = torch.special.bessel_j0(x)
    res = s2kan_discover(x, y, x, y, ["x"], ["f"], width=[1, 1], grid=10, steps=150,
                         library=["x", "x^2", "sin", "exp", "J0"])  # fmt: skip
    assert res.spline_edges == []
    assert res.formulas[0].has(sympy.besselj)
    assert res.test_rmse < 1e-8
