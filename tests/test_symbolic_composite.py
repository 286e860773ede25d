"""Composite edge functions f(alpha h(x) + beta): fitting, naming, and use in a KAN."""

from __future__ import annotations

import torch

from physkan import MultKAN
from physkan.symbolic import fix_symbolic, get_symbolic, model_formula, resolve_library
from physkan.symbolic.composite import fit_composition


def test_fit_composition_finds_sqrt_of_one_minus_square() -> None:
    x = torch.linspace(-0.9, 0.9, 400, dtype=torch.float64)
    y = -1.3 * torch.sqrt(1 - x**2) + 0.2
    fit = fit_composition(x, y, resolve_library(["x", "x^2", "sin", "exp", "sqrt"]))
    assert fit is not None and fit.name == "sqrt(1 - x**2)"
    assert abs(fit.c + 1.3) < 1e-6 and abs(fit.d - 0.2) < 1e-6


def test_min_score_skips_pairs_that_cannot_win_and_keeps_the_answer(monkeypatch) -> None:
    """The bound is exact: a composite that beats ``min_score`` is found as without it; when
    no pair can beat it (a simpler single function fits), no pair is even fitted."""
    import physkan.symbolic.composite as composite
    from physkan.symbolic.fit import score_candidate

    x = torch.linspace(-0.9, 0.9, 400, dtype=torch.float64)
    y = -1.3 * torch.sqrt(1 - x**2) + 0.2
    lib = resolve_library(["x", "x^2", "sin", "exp", "sqrt"])
    free = fit_composition(x, y, lib)
    bounded = fit_composition(x, y, lib, min_score=score_candidate(0.9, 2))  # a poor single sqrt
    assert free is not None and bounded == free
    calls = []
    real_fit = composite.affine_fit
    monkeypatch.setattr(composite, "affine_fit", lambda *a, **k: calls.append(a) or real_fit(*a, **k))
    exact_single = score_candidate(1.0 - 1e-7, 2)  # e.g. sin fitting to r2 = 1 - 1e-7
    assert fit_composition(x, y, lib, min_score=exact_single) is None
    assert calls == []


def test_composite_name_round_trips_through_a_saved_model(tmp_path) -> None:
    fn = get_symbolic("sqrt(1 - x**2)")
    assert torch.allclose(fn.torch_fn(torch.tensor([0.6])), torch.tensor([0.8]))
    model = MultKAN([1, 1], variables=["v"]).double()
    fix_symbolic(model, None, 0, 0, 0, "sqrt(1 - x**2)")
    model.save(tmp_path / "m.h5")
    loaded = MultKAN.load(tmp_path / "m.h5")
    assert str(model_formula(loaded).expressions[0]) == "sqrt(1 - v**2)"


def test_unknown_word_is_still_an_error() -> None:
    import pytest

    from physkan.symbolic import UnknownSymbolicError

    with pytest.raises(UnknownSymbolicError):
        get_symbolic("frobnicate(x)")
