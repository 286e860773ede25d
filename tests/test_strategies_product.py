"""Product separability (rank-one ALS + symbolic factors) used by the regression strategy."""

from __future__ import annotations

import pytest
import torch

from physkan.strategies.logsep import sign_of
from physkan.strategies.product import (
    _offset_fit,
    block_product_formula,
    product_formula,
    rank1_fit,
)
from physkan.symbolic import equivalent

pytestmark = pytest.mark.recovery


def _data(fn, lows, highs, n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    lo, hi = torch.tensor(lows, dtype=torch.float64), torch.tensor(highs, dtype=torch.float64)
    x = lo + (hi - lo) * torch.rand(n, len(lows), generator=g, dtype=torch.float64)
    return x, fn(*x.T).reshape(-1, 1)


def test_product_of_factors_with_sign_change() -> None:
    x, y = _data(lambda m, r, t: m * r * torch.sin(t), [1, 1, 1], [5, 5, 5])
    assert sign_of(y) == 0
    expr = product_formula(x, y, ["m", "r", "theta"])
    assert expr is not None
    assert equivalent(expr, "m*r*sin(theta)", ["m", "r", "theta"], {"m": (1, 5), "r": (1, 5), "theta": (1, 5)})


def test_non_product_is_rejected() -> None:
    x, y = _data(lambda a, b: torch.exp(-((a / b) ** 2)), [1, 1], [3, 3])
    assert product_formula(x, y, ["a", "b"]) is None


def test_product_with_additive_block() -> None:
    x, y = _data(lambda m, v, u: m * (v**2 + u**2) / 2, [1, 1, 1], [5, 5, 5])
    expr = block_product_formula(x, y, ["m", "v", "u"])
    assert expr is not None
    assert equivalent(expr, "m*(v**2+u**2)/2", ["m", "v", "u"], {"m": (1, 5), "v": (1, 5), "u": (1, 5)})


def test_als_gives_up_early_on_a_sum_and_not_on_a_product() -> None:
    """``give_up``: a sum (no rank-one structure: the error falls slowly, far above the
    threshold) stops after a fraction of the sweeps, with the same verdict; a product that
    converges is fitted exactly as without it."""
    x, y = _data(lambda a, b: a**2 + torch.sin(3 * b), [-1, -1], [1, 1])
    y = y.reshape(-1)
    full = _offset_fit(x, y)
    early = _offset_fit(x, y, give_up=1e-4)
    assert full.rel_error > 1e-3 and early.rel_error > 1e-3  # rejected either way
    assert early.sweeps < full.sweeps / 4
    x, y = _data(lambda a, b: (1 + a**2) * torch.exp(b), [-1, -1], [1, 1])
    y = y.reshape(-1)
    plain, guarded = rank1_fit(x, y), rank1_fit(x, y, give_up=1e-4)
    assert guarded.rel_error < 1e-8 and guarded.sweeps == plain.sweeps
    assert all(torch.equal(a, b) for a, b in zip(plain.factors, guarded.factors))
