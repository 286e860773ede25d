"""Tests of the symbolic function registry (physkan.symbolic.library)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
import torch

from physkan.symbolic import library as lib_mod
from physkan.symbolic.library import (
    DEFAULT_LIBRARY,
    SymbolicFunction,
    UnknownSymbolicError,
    available_symbolic,
    get_symbolic,
    register_symbolic,
    resolve_library,
)

EXPECTED_COMPLEXITY = {
    "x": 1, "x^2": 2, "x^3": 3, "x^4": 3, "x^5": 3, "1/x": 2, "1/x^2": 2, "1/x^3": 3,
    "1/x^4": 4, "sqrt": 2, "x^1.5": 4, "1/sqrt": 2, "exp": 2, "log": 2, "abs": 3, "sin": 2,
    "cos": 2, "tan": 3, "tanh": 3, "sgn": 3, "arcsin": 4, "arccos": 4, "arctan": 4,
    "arctanh": 4, "gaussian": 3, "0": 0,
}  # fmt: skip


def test_required_entries_and_complexities() -> None:
    names = available_symbolic()
    for name, complexity in EXPECTED_COMPLEXITY.items():
        assert name in names
        assert get_symbolic(name).complexity == complexity
    assert {"sinh", "cosh", "1/x^1.5"} <= set(names)
    assert get_symbolic("log").domain == (0.0, math.inf)
    assert get_symbolic("arcsin").domain == (-1.0, 1.0)


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("x2", "x^2"), ("x**2", "x^2"), ("square", "x^2"), ("X^2", "x^2"), ("inv", "1/x"),
        ("asin", "arcsin"), ("ln", "log"), ("x**3", "x^3"), ("atanh", "arctanh"),
        ("sign", "sgn"), ("x^0.5", "sqrt"), ("1/x**2", "1/x^2"), (" sin ", "sin"),
    ],
)  # fmt: skip
def test_aliases(alias: str, canonical: str) -> None:
    assert get_symbolic(alias).name == canonical


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(UnknownSymbolicError) as info:
        get_symbolic("sinn")
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    assert "'sinn'" in msg and "sin" in msg and "sinh" in msg
    assert "Available:" in msg and "gaussian" in msg


def test_register_clash_and_overwrite() -> None:
    fn = SymbolicFunction("test_cube_plus", lambda x: x**3 + x, lambda x: x**3 + x, 3)
    try:
        register_symbolic(fn)
        assert get_symbolic("test_cube_plus") is fn
        with pytest.raises(ValueError, match="already registered"):
            register_symbolic(fn)
        with pytest.raises(ValueError, match="already registered"):
            register_symbolic(SymbolicFunction("ln", torch.log, sympy.log, 2))
        other = SymbolicFunction("test_cube_plus", lambda x: x**3, lambda x: x**3, 3)
        register_symbolic(other, overwrite=True)
        assert get_symbolic("test_cube_plus") is other
    finally:
        lib_mod.SYMBOLIC.unregister("test_cube_plus")
    assert "test_cube_plus" not in available_symbolic()


def test_resolve_library() -> None:
    default = resolve_library(None)
    assert tuple(default) == DEFAULT_LIBRARY
    assert all(isinstance(v, SymbolicFunction) for v in default.values())
    picked = resolve_library(["sin", "x**2", "x2", "ln"])
    assert list(picked) == ["sin", "x^2", "log"]
    with pytest.raises(UnknownSymbolicError):
        resolve_library(["sin", "bessel"])


NEAR_SINGULAR = [
    -1e3, -80.0, -2.0, -1.0 - 1e-7, -1.0, -1.0 + 1e-7, -0.5, -1e-6, -1e-12, 0.0, 1e-12,
    1e-6, 0.5, 1.0 - 1e-7, 1.0, 1.0 + 1e-7, math.pi / 2, 2.0, 80.0, 1e3,
]  # fmt: skip


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", available_symbolic())
def test_torch_fn_finite_and_twice_differentiable(name: str, dtype: torch.dtype) -> None:
    fn = get_symbolic(name)
    x = torch.tensor(NEAR_SINGULAR, dtype=dtype, requires_grad=True)
    y = fn.torch_fn(x)
    assert y.shape == x.shape and y.dtype == dtype
    assert torch.isfinite(y).all(), (name, y)
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    assert torch.isfinite(g).all(), (name, g)
    if g.requires_grad:
        (h,) = torch.autograd.grad(g.sum(), x, allow_unused=True)
        assert h is None or torch.isfinite(h).all(), (name, h)


@pytest.mark.parametrize("name", lib_mod.BUILTIN_SYMBOLIC)  # plugins test their own
def test_torch_matches_sympy_inside_domain(name: str) -> None:
    fn = get_symbolic(name)
    pts = np.array([0.2, 0.5, 0.8, 1.3, 2.5])
    if fn.domain is not None:
        lo, hi = fn.domain
        pts = pts[(pts > lo) & (pts < hi)]
    u = sympy.Symbol("u")
    ref = sympy.lambdify(u, fn.sympy_fn(u), modules="numpy")
    expected = np.broadcast_to(np.asarray(ref(pts), dtype=float), pts.shape)
    got = fn.torch_fn(torch.tensor(pts, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_guards_are_only_local() -> None:
    x = torch.tensor([0.01, 0.5, 3.0], dtype=torch.float64)
    torch.testing.assert_close(get_symbolic("1/x").torch_fn(x), 1 / x)
    torch.testing.assert_close(get_symbolic("log").torch_fn(x), torch.log(x))
    torch.testing.assert_close(get_symbolic("tan").torch_fn(x), torch.tan(x))
    torch.testing.assert_close(get_symbolic("sqrt").torch_fn(x), torch.sqrt(x))
