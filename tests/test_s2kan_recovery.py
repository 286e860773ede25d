"""Acceptance tests: S2KAN recovers exact formulas, keeps splines where the library has no
closed form, and does not get more complex on noisy data (MDL resists over-fitting)."""

from __future__ import annotations

import math

import pytest
import torch

from physkan.s2kan import s2kan_discover
from physkan.symbolic.equivalence import equivalent

pytestmark = pytest.mark.recovery

RANGES = {"x": (-1.0, 1.0), "y": (-1.0, 1.0)}


def _data(fn, n: int = 1000, seed: int = 0, noise: float = 0.0, low=-1.0, high=1.0, dim=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, dim, generator=g, dtype=torch.float64) * (high - low) + low
    y = fn(x)
    if noise:
        y = y + noise * y.std() * torch.randn(y.shape, generator=g, dtype=torch.float64)
    return x, y


def _exp_sin(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(torch.sin(math.pi * x[:, :1]) + x[:, 1:] ** 2)


def _run(fn, noise: float = 0.0, **kw):
    xtr, ytr = _data(fn, noise=noise)
    xte, yte = _data(fn, seed=1)
    return s2kan_discover(xtr, ytr, xte, yte, ["x", "y"], ["f"], **kw)


_CLEAN: dict[int, object] = {}


@pytest.fixture
def exp_sin_clean(torch_threads: int):
    """The clean ``exp(sin(pi x) + y^2)`` fit, once per thread count (shared by two tests)."""
    if torch_threads not in _CLEAN:
        _CLEAN[torch_threads] = _run(_exp_sin, width=[2, 1, 1])
    return _CLEAN[torch_threads]


def test_exp_sin_exact(exp_sin_clean) -> None:
    res = exp_sin_clean
    assert equivalent(res.formulas[0], "exp(sin(pi*x) + y**2)", ["x", "y"], RANGES)
    assert res.spline_edges == []
    # every non-needed gate closed: one term per edge
    assert sorted(t[3] for t in res.model.open_terms()) in (
        ["exp", "sin", "x^2"], ["cos", "exp", "x^2"],
    )  # fmt: skip
    assert res.test_rmse < 1e-5


def test_noise_does_not_add_complexity(exp_sin_clean) -> None:
    noisy = _run(_exp_sin, noise=0.05, width=[2, 1, 1])
    assert noisy.model.complexity() <= exp_sin_clean.model.complexity()
    assert len(noisy.model.open_terms()) <= len(exp_sin_clean.model.open_terms())
    assert noisy.spline_edges == []


def test_bessel_keeps_spline() -> None:
    def j0(x: torch.Tensor) -> torch.Tensor:
        return torch.special.bessel_j0(x)

    xtr, ytr = _data(j0, low=0.0, high=8.0, dim=1, n=600)
    xte, yte = _data(j0, low=0.0, high=8.0, dim=1, n=600, seed=1)
    res = s2kan_discover(xtr, ytr, xte, yte, ["x"], ["f"], width=[1, 1], grid=10, steps=150)
    assert res.spline_edges == [(0, 0, 0)]
    assert "spline_{0,0,0}" in str(res.formulas[0])
    assert res.report and "spline_{0,0,0}" in res.report[0]
    assert res.test_rmse < 0.01


def test_product_plus_sine_exact() -> None:
    """x·y + sin(x) through one sum and one product node; every edge that is not needed
    (y into the sum, x and y into the wrong product factor) ends with all gates closed."""
    res = _run(lambda x: x[:, :1] * x[:, 1:] + torch.sin(x[:, :1]), width=[2, [1, 1], 1])
    assert equivalent(res.formulas[0], "x*y + sin(x)", ["x", "y"], RANGES)
    assert res.spline_edges == []
    edges = {(lyr, i, j) for lyr, i, j, _ in res.model.open_terms()}
    assert len(res.model.open_terms()) == len(edges) == 5  # one term per needed edge
    assert (0, 1, 0) not in edges  # y does not feed the sum node
    assert res.test_rmse < 1e-8


@pytest.mark.slow
def test_auto_structure_recovers_monomial() -> None:
    """``width="auto"`` picks the log-target structure for a monomial and snaps its powers."""
    def fn(x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] * x[:, 1:] ** 2

    xtr, ytr = _data(fn, low=1.0, high=3.0, n=500)
    xte, yte = _data(fn, low=1.0, high=3.0, n=500, seed=1)
    res = s2kan_discover(xtr, ytr, xte, yte, ["x", "y"], ["f"], width="auto", steps=150)
    assert res.target_transform == "log"
    assert equivalent(res.formulas[0], "x*y**2", ["x", "y"], {"x": (1.0, 3.0), "y": (1.0, 3.0)})
