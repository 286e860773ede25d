"""Noise-aware network-free tests of a decomposition node (1e-3 relative noise on ``y``):
weighted rational fits judged by their weighted residuals, noise carried through ``T(y)``."""

from __future__ import annotations

import pytest
import sympy
import torch

from physkan.strategies.decompose.cheap import cheap_candidates
from physkan.strategies.decompose.noise import propagate_sigma
from physkan.strategies.decompose.rational import chi_gate, rational_fit
from physkan.symbolic.equivalence import equivalent
from physkan.symbolic.simplify import noise_scope

NOISE = 1e-3


def _box(n: int, lo: float, hi: float, rows: int = 600, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(rows, n, dtype=torch.float64, generator=g)


def _noisy(y: torch.Tensor, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return y + NOISE * y.std() * torch.randn(len(y), dtype=torch.float64, generator=g)


def _same(found, truth: str, ranges: dict[str, tuple[float, float]]) -> bool:
    return found is not None and equivalent(found, truth, list(ranges), ranges).equivalent


def test_sigma_is_carried_through_a_transform() -> None:
    y = torch.tensor([0.5, 1.0, 4.0], dtype=torch.float64)
    got = propagate_sigma(lambda u: torch.log(u.abs()), y, torch.full_like(y, 1e-3))
    assert torch.allclose(got, 1e-3 / y)  # log|y| is noisiest where |y| is small
    assert propagate_sigma(torch.log, y, None) is None  # exact data


def test_chi_gate_tightens_with_more_samples() -> None:
    assert 1.0 < chi_gate(10_000) < chi_gate(300) < 1.3


@pytest.mark.recovery
def test_noisy_relativistic_velocity_addition_is_a_rational_law() -> None:
    """I.16.6 with 1e-3 noise: the unweighted fit of exact data keeps spurious terms (or
    none fits to 1e-8); the weighted fit with an information criterion finds the law."""
    ranges = {"c": (3.0, 10.0), "v": (1.0, 2.0), "u": (1.0, 2.0)}
    x = torch.stack([_box(1, *r, seed=k)[:, 0] for k, r in enumerate(ranges.values())], 1)
    c, v, u = x.T
    y = _noisy((u + v) / (1 + u * v / c**2))
    found = rational_fit(x, y, list(ranges), sigma=torch.full_like(y, NOISE * float(y.std())))
    assert _same(found, "(u + v)/(1 + u*v/c**2)", ranges)


def test_noisy_rational_fit_rejects_a_transcendental_law() -> None:
    """``exp(a)·b`` is fitted within a few times the noise by a Pade approximant, not within it."""
    x = _box(2, 1.0, 3.0)
    y = _noisy(torch.exp(x[:, 0]) * x[:, 1])
    assert rational_fit(x, y, ["a", "b"], max_degree=3, sigma=torch.full_like(y, NOISE * float(y.std()))) is None


@pytest.mark.recovery
def test_noisy_bose_einstein_law_from_a_shifted_log_target() -> None:
    """III.4.32 ``1/(exp(h·ω/(2π·k_b·T)) - 1)`` with 1e-3 noise: ``log(1/y + 1)`` amplifies the
    noise where ``y`` is large; weighted by the carried noise its rational law is exact."""
    ranges = {"h": (1.0, 5.0), "omega": (1.0, 5.0), "kb": (1.0, 5.0), "T": (1.0, 5.0)}
    x = _box(4, 1.0, 5.0, rows=800)
    h, w, kb, t = x.T
    y = _noisy(1 / (torch.exp(h * w / (2 * torch.pi * kb * t)) - 1))
    with noise_scope(NOISE):
        found = next(iter(cheap_candidates(x, y, list(ranges), rtol=1.5e-3, seconds=30)), None)
    assert _same(found, "1/(exp(h*omega/(2*pi*kb*T)) - 1)", ranges)
    assert sympy.Float not in {type(a) for a in found.atoms()}  # constants snapped
