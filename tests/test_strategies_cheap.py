"""Network-free tests of a decomposition node: rational laws, products with an offset, arcsin."""

from __future__ import annotations

import pytest
import sympy
import torch

from physkan.strategies.decompose.cheap import cheap_candidates
from physkan.strategies.decompose.leaves import fit_leaf
from physkan.strategies.decompose.rational import monomial_exponents, rational_fit
from physkan.strategies.product import product_formula
from physkan.symbolic.equivalence import equivalent


def _box(n: int, lo: float = 1.0, hi: float = 5.0, rows: int = 600, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(rows, n, dtype=torch.float64, generator=g)


def _same(found, truth: str, names: list[str], lo: float = 1.0, hi: float = 5.0) -> bool:
    return found is not None and equivalent(found, truth, names, {v: (lo, hi) for v in names}).equivalent


def test_monomials_of_two_variables_up_to_degree_two() -> None:
    assert monomial_exponents(2, 2) == [(0, 0), (0, 1), (1, 0), (0, 2), (1, 1), (2, 0)]


@pytest.mark.parametrize(
    ("truth", "law"),
    [
        ("(u + v)/(1 + u*v/c**2)", lambda u, v, c: (u + v) / (1 + u * v / c**2)),
        ("1 + u*v/(1 - u*v/3)", lambda u, v, c: 1 + u * v / (1 - u * v / 3)),
        ("(u - v)**2 + c**2", lambda u, v, c: (u - v) ** 2 + c**2),
    ],
)
def test_rational_fit_recovers_ratios_of_small_polynomials(truth: str, law) -> None:
    x = _box(3)
    assert _same(rational_fit(x, law(*x.T), ["u", "v", "c"], rtol=1e-9), truth, ["u", "v", "c"])


def test_rational_fit_rejects_a_transcendental_law() -> None:
    x = _box(2)
    assert rational_fit(x, torch.exp(x[:, 0]) * x[:, 1], ["a", "b"], rtol=1e-9, max_degree=3) is None


def test_rational_fit_drops_noise_terms() -> None:
    """On noisy data the sparsified law has exactly the true monomials."""
    x = _box(4)
    y = x[:, 0] * x[:, 1] + x[:, 2] * x[:, 3]
    noisy = y + 1e-3 * y.std() * torch.randn(len(y), dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    found = rational_fit(x, noisy, ["a", "b", "c", "d"], rtol=1.5e-3)
    assert _same(found, "a*b + c*d", ["a", "b", "c", "d"])


def test_product_with_an_offset() -> None:
    x = _box(4)
    m, g, kb, t = x.T
    found = product_formula(x, 2 - m * g / (kb * t), ["m", "g", "kb", "T"], offset=True)
    assert _same(found, "2 - m*g/(kb*T)", ["m", "g", "kb", "T"])
    assert product_formula(x, m + g, ["m", "g", "kb", "T"], offset=True) is None


def test_arcsin_outer_function_in_a_leaf_and_a_node() -> None:
    x = _box(2, 0.2, 0.9)
    found = fit_leaf(x, torch.asin(x[:, 0] * torch.sin(x[:, 1])), ["n", "theta"])
    assert _same(found, "asin(n*sin(theta))", ["n", "theta"], 0.2, 0.9)
    x3 = _box(3, 1.0, 2.0)
    y = torch.asin(x3[:, 0] / (2 * x3[:, 1] * x3[:, 2]))
    assert any(_same(c, "asin(l/(2*n*d))", ["l", "n", "d"], 1.0, 2.0)
               for c in cheap_candidates(x3, y, ["l", "n", "d"], rtol=1e-6))  # fmt: skip


@pytest.mark.slow
def test_one_variable_splits_off_a_product_law() -> None:
    """``log n0 - m·g/kb`` (additive split) and ``n0·(1 + m·g/kb)`` (multiplicative)."""
    from physkan.strategies.decompose.split import split_candidates

    x = _box(4, rows=500)
    n0, m, g, kb = x.T
    names = ["n0", "m", "g", "kb"]
    found = next(split_candidates(x, torch.log(n0) - m * g / kb, names, rtol=1e-7), None)
    assert _same(found, "log(n0) - m*g/kb", names)
    found = next(split_candidates(x, n0 * (1 + m * g / kb), names, rtol=1e-7), None)
    assert _same(found, "n0*(1 + m*g/kb)", names)
    assert next(split_candidates(x, n0 * m + g * kb, names, rtol=1e-7), None) is None


def test_low_degree_law_of_a_transform_beats_a_dense_approximant() -> None:
    """``m/sqrt(1 - v²/c²)`` is smooth enough for a dense rational approximant of ``y``; the
    first candidate must be the exact degree-4 law of ``y²`` instead."""
    x = torch.stack([_box(1)[:, 0], _box(1, 1, 2, seed=1)[:, 0], _box(1, 3, 10, seed=2)[:, 0]], 1)
    m, v, c = x.T
    first = next(cheap_candidates(x, m / torch.sqrt(1 - v**2 / c**2), ["m", "v", "c"], rtol=1e-6))
    ranges = {"m": (1, 5), "v": (1, 2), "c": (3, 10)}
    assert equivalent(first, "m/sqrt(1 - v**2/c**2)", ["m", "v", "c"], ranges).equivalent
    assert len(first.atoms(sympy.Float)) == 0, first


def test_trig_of_a_product_pair_in_a_rational_law() -> None:
    """``x1·(cos(ω·t) + α·cos²(ω·t))``: the pair ``ω, t`` becomes one variable ``cos(ω·t)``."""
    x = _box(4, 1.0, 3.0)
    x1, w, t, a = x.T
    c = torch.cos(w * t)
    names = ["x1", "omega", "t", "alpha"]
    first = next(cheap_candidates(x, x1 * (c + a * c**2), names, rtol=1e-6), None)
    assert _same(first, "x1*(cos(omega*t) + alpha*cos(omega*t)**2)", names, 1.0, 3.0)


def test_dense_rational_approximant_is_not_an_exact_law() -> None:
    """A Pade approximant of ``1/(exp(u/(2π·v)) - 1)`` fits to 1e-9 but keeps many unsnapped
    constants: rejected on exact data; the law itself comes from ``log(1/y + 1)``."""
    b = _box(4, rows=1000)
    z = torch.stack([b[:, 0] * b[:, 1], b[:, 2] * b[:, 3]], 1)
    assert rational_fit(z, 1 / (torch.exp(z[:, 0] / (2 * torch.pi * z[:, 1])) - 1), ["u", "v"], rtol=1e-9) is None
    x = _box(2, 1.0, 3.0)
    y = 1 / (torch.exp(x[:, 0] * x[:, 1] / 4) - 1)
    first = next(cheap_candidates(x, y, ["a", "b"], rtol=1e-6), None)
    assert _same(first, "1/(exp(a*b/4) - 1)", ["a", "b"], 1.0, 3.0)


def test_shifted_log_of_y_over_a_variable() -> None:
    """``I_0·(exp(q·V/(kb·T)) - 1)``: ``log(y/I_0 + 1)`` is a product law."""
    x = _box(5, 1.0, 2.0)
    i0, q, v, kb, t = x.T
    names = ["I_0", "q", "V", "kb", "T"]
    first = next(cheap_candidates(x, i0 * (torch.exp(q * v / (kb * t)) - 1), names, rtol=1e-6), None)
    assert _same(first, "I_0*(exp(q*V/(kb*T)) - 1)", names, 1.0, 2.0)
