"""KAN-guided recursive decomposition: gradient tests, leaves, recovery of formulas."""

from __future__ import annotations

import time

import pytest
import sympy
import torch

from physkan.interpret.modularity import input_attribution, pair_symmetry_scores, separability
from physkan.strategies.decompose import decompose_regression
from physkan.strategies.decompose.leaves import fit_leaf
from physkan.strategies.decompose.surrogate import fit_surrogate
from physkan.symbolic.equivalence import equivalent


def _uniform(n: int, box: list[tuple[float, float]], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lo = torch.tensor([b[0] for b in box], dtype=torch.float64)
    hi = torch.tensor([b[1] for b in box], dtype=torch.float64)
    return lo + (hi - lo) * torch.rand(n, len(box), dtype=torch.float64, generator=g)


def test_difference_symmetry_passes_and_sum_fails() -> None:
    x = _uniform(300, [(0.5, 2.0)] * 3)
    scores = pair_symmetry_scores(lambda z: torch.sin(z[:, 0] - z[:, 1]) * z[:, 2], x)
    assert scores[(0, 1, "diff")] < 1e-10
    assert scores[(0, 1, "sum")] > 0.5
    assert min(scores[(0, 2, k)] for k in ("diff", "sum", "prod", "ratio")) > 0.3


def test_product_and_ratio_symmetries() -> None:
    x = _uniform(300, [(0.5, 2.0)] * 2)
    prod = pair_symmetry_scores(lambda z: torch.exp(z[:, 0] * z[:, 1]), x)
    ratio = pair_symmetry_scores(lambda z: torch.sqrt(1 + z[:, 0] / z[:, 1]), x)
    assert prod[(0, 1, "prod")] < 1e-10 < 0.3 < prod[(0, 1, "ratio")]
    assert ratio[(0, 1, "ratio")] < 1e-10 < 0.3 < ratio[(0, 1, "prod")]
    with pytest.raises(ValueError, match="kinds"):
        pair_symmetry_scores(lambda z: z[:, 0], x, kinds=("twist",))


def test_unused_input_has_zero_attribution() -> None:
    x = _uniform(200, [(-1.0, 1.0)] * 3)
    att = input_attribution(lambda z: z[:, 0] ** 2 + torch.sin(z[:, 2]), x)
    assert float(att[1]) == 0.0 and float(att[0]) > 0.1 and float(att[2]) > 0.1


def test_additive_versus_multiplicative_separability() -> None:
    x = _uniform(300, [(0.5, 2.0)] * 3)
    add = lambda z: z[:, 0] * z[:, 1] + torch.sin(z[:, 2])  # noqa: E731
    mul = lambda z: z[:, 0] * z[:, 1] * torch.exp(z[:, 2])  # noqa: E731
    assert separability(add, x, "add").groups == [[0, 1], [2]]
    assert not separability(add, x, "mul").separable
    assert separability(mul, x, "mul").groups == [[0], [1], [2]]
    assert not separability(mul, x, "add").separable


def test_surrogate_gradients_see_the_symmetry() -> None:
    """The KAN surrogate (not the true function) passes the difference test."""
    x = _uniform(700, [(0.5, 2.0)] * 2)
    y = torch.exp(-((x[:, 0] - x[:, 1]) ** 2))
    sur = fit_surrogate(x[:500], y[:500], x[500:], y[500:], seconds=10.0, target=1e-3)
    assert sur.rel_error < 2e-2
    scores = pair_symmetry_scores(sur, x[:500])
    assert scores[(0, 1, "diff")] < 0.1 < scores[(0, 1, "sum")]


def test_leaf_finds_two_variable_laws_through_outer_transforms() -> None:
    x = _uniform(400, [(0.5, 2.0)] * 2)
    found = fit_leaf(x, torch.sqrt(x[:, 0] ** 2 + x[:, 1] ** 2), ["a", "b"])
    assert found is not None
    assert equivalent(found, "sqrt(a**2 + b**2)", ["a", "b"], {"a": (0.5, 2), "b": (0.5, 2)}).equivalent
    assert fit_leaf(x, torch.sin(x[:, 0] * x[:, 1]) ** 3 + x[:, 0], ["a", "b"]) is None
    with pytest.raises(ValueError, match="variables"):
        fit_leaf(_uniform(10, [(0, 1)] * 3), torch.zeros(10), ["a", "b", "c"])


ACCEPTANCE = {
    "distance": ("sqrt(x**2 + y**2)", {"x": (0.5, 2.0), "y": (0.5, 2.0)}, 30.0),
    "sum_sin_unused": ("x0*x1 + sin(x2)", {"x0": (-1, 1), "x1": (-1, 1), "x2": (-2, 2), "x3": (-1, 1)}, 60.0),
    "gaussian": ("exp(-((theta - theta1)/sigma)**2/2)/(sqrt(2*pi)*sigma)",
                 {"sigma": (1, 3), "theta": (1, 3), "theta1": (1, 3)}, 60.0),
    "dot": ("x1*y1 + x2*y2 + x3*y3", {v: (1.0, 5.0) for v in ("x1", "y1", "x2", "y2", "x3", "y3")}, 60.0),
    "relativistic": ("m_0/sqrt(1 - v**2/c**2)", {"m_0": (1, 5), "v": (1, 2), "c": (3, 10)}, 60.0),
}


@pytest.mark.slow
@pytest.mark.recovery
@pytest.mark.parametrize("case", sorted(ACCEPTANCE))
def test_decomposition_recovers(case: str) -> None:
    truth, ranges, seconds = ACCEPTANCE[case]
    names = list(ranges)
    x = _uniform(1000, [ranges[v] for v in names])
    expr = sympy.sympify(truth, locals={v: sympy.Symbol(v, real=True) for v in names})
    y = torch.as_tensor(sympy.lambdify(sympy.symbols(names, real=True), expr, "numpy")(*x.T.numpy()))
    start = time.monotonic()
    found = decompose_regression(x[:800], y[:800], names, x_test=x[800:], y_test=y[800:], seconds=seconds)
    took = time.monotonic() - start
    assert found is not None, case
    assert equivalent(found, truth, names, ranges).equivalent, (case, found)
    assert took < seconds + 10.0, took
