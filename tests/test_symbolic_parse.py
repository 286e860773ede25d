"""The one formula front end (physkan.symbolic.parse): one parse, one table, one evaluator each."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sympy
import torch

import physkan.problems
import physkan.problems.expressions
import physkan.symbolic
import physkan.symbolic.equivalence
from physkan.problems import load_problem
from physkan.registry import NameClash
from physkan.symbolic import parse
from physkan.symbolic.equivalence import _to_expr, equivalent
from physkan.symbolic.parse import (
    FORMULA_FUNCTIONS,
    ExpressionError,
    lambdify_numpy,
    lambdify_torch,
    parse_expression,
    plain_symbols,
    register_formula_function,
    unregister_formula_function,
)

HAS_SPECIAL = importlib.util.find_spec("physkan_special") is not None
needs_special = pytest.mark.skipif(not HAS_SPECIAL, reason="physkan-special plugin not installed")


class halfsq(sympy.Function):  # noqa: N801 - sympy functions are lowercase
    """A test plugin function: ``halfsq(u) = u**2/2`` (unevaluated, so printers see it)."""

    nargs = 1

    def _eval_evalf(self, prec: int) -> sympy.Expr:
        return (self.args[0] ** 2 / 2).evalf(prec)


@pytest.fixture
def test_function():
    register_formula_function("halfsq", halfsq, torch=lambda t: t * t / 2,
                              numpy=lambda a: np.asarray(a) ** 2 / 2, source="test-plugin")  # fmt: skip
    try:
        yield "halfsq"
    finally:
        unregister_formula_function("halfsq")


def test_one_public_parse_expression() -> None:
    assert physkan.symbolic.parse_expression is parse.parse_expression
    assert physkan.problems.parse_expression is parse.parse_expression
    assert physkan.problems.expressions.parse_expression is parse.parse_expression
    assert physkan.symbolic.equivalence.parse_expression is parse.parse_expression
    assert physkan.problems.ExpressionError is ExpressionError


FORMULAS = [
    "x^2 + ln(x) + arcsin(x/2)",
    "sign(x - y) + sgn(y)",
    "atan2(y, x) + arctan2(x, y)",
    "Max(x, y) + min(x, 1) + abs(y)",
    "gaussian(x - y) + Heaviside(x)",
    "sqrt(x**2) + E*pi",
    "halfsq(x + y)",
]


def _via_problem_file(text: str, tmp_path: Path) -> sympy.Expr:
    """``text`` as the target of a problem file, read by the problems loader."""
    path = tmp_path / "t.toml"
    path.write_text(
        'name = "t"\ntype = "regression"\n[system]\nvariables = ["x", "y"]\n'
        f"target = {text!r}\n[data]\nranges = {{ x = [0.5, 2], y = [0.5, 2] }}\n"
    )
    return load_problem(str(path)).system.target_exprs()[0]


def _assert_plain(expr: sympy.Expr) -> None:
    for s in expr.free_symbols:
        assert s.assumptions0 == sympy.Symbol(s.name).assumptions0, s


@pytest.mark.parametrize("text", FORMULAS + (["sinc(3*x) + erf(y) + J0(x)"] if HAS_SPECIAL else []))
def test_same_object_through_problem_file_equivalence_and_parse(
    text: str, test_function, tmp_path: Path
) -> None:
    direct = parse_expression(text, ["x", "y"])
    _assert_plain(direct)
    from_file = _via_problem_file(text, tmp_path)
    assert from_file == direct and sympy.srepr(from_file) == sympy.srepr(direct)
    internal = _to_expr(text, ["x", "y"])  # equivalence works on real symbols internally ...
    assert all(s.is_real for s in internal.free_symbols)
    assert plain_symbols(internal) == plain_symbols(_to_expr(direct, ["x", "y"]))  # ... the same
    verdict = equivalent(text, direct, ["x", "y"], {"x": (0.5, 2), "y": (0.5, 2)})
    assert verdict.equivalent, verdict.reason


def test_sqrt_of_square_is_one_result(tmp_path: Path) -> None:
    expr = parse_expression("sqrt(q**2)", ["q"])
    assert _via_problem_file("sqrt(x**2)", tmp_path) == parse_expression("sqrt(x**2)", ["x", "y"])
    assert expr == sympy.sqrt(sympy.Symbol("q") ** 2)  # no assumption turns it into Abs(q)
    assert equivalent("sqrt(q**2)", "Abs(q)", ["q"], {"q": (-2, 2)}).method == "symbolic"


def _entry_expr(name: str, x: sympy.Symbol, y: sympy.Symbol) -> sympy.Expr | None:
    entry = FORMULA_FUNCTIONS.get(name)
    if entry.sympy is None:
        return None
    if not callable(entry.sympy):
        return entry.sympy * x
    special = {"atan2": (y, x), "Max": (x, y), "Min": (x, y), "besselj": (0, x), "acosh": (x + 1,)}
    return entry.sympy(*special.get(name, (x,)))


def test_every_table_entry_agrees_in_torch_numpy_and_sympy(test_function) -> None:
    x, y = sympy.symbols("x y")
    rng = np.random.default_rng(0)
    points = rng.uniform(0.1, 0.9, size=(16, 2))
    checked = []
    for name in FORMULA_FUNCTIONS.names():
        expr = _entry_expr(name, x, y)
        if expr is None:
            continue
        ref = np.array([float(expr.evalf(30, subs={x: a, y: b})) for a, b in points])
        np_values = lambdify_numpy(expr, ["x", "y"])(points)
        torch_values = lambdify_torch(expr, ["x", "y"])(torch.tensor(points)).detach().numpy()
        np.testing.assert_allclose(np_values, ref, rtol=1e-9, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(torch_values, ref, rtol=1e-9, atol=1e-12, err_msg=name)
        checked.append(name)
    assert {"sign", "atan2", "Max", "Min", "gaussian", "Heaviside", "cot", "halfsq"} <= set(checked)


def test_plugin_function_is_called_in_both_evaluators(test_function) -> None:
    calls = []
    entry = FORMULA_FUNCTIONS.get("halfsq")
    assert FORMULA_FUNCTIONS.source("halfsq") == "test-plugin" and entry.torch is not None
    expr = parse_expression("halfsq(x) + 1", ["x"])
    assert expr.has(halfsq)
    unregister_formula_function("halfsq")
    register_formula_function("halfsq", halfsq, torch=lambda t: calls.append("torch") or t * t / 2,
                              numpy=lambda a: calls.append("numpy") or a * a / 2)  # fmt: skip
    assert lambdify_torch(expr, ["x"])(torch.tensor([[2.0]])).item() == 3.0
    assert lambdify_numpy(expr, ["x"])(np.array([2.0]))[0] == 3.0
    assert calls == ["torch", "numpy"]


def test_builtins_win_and_plugins_cannot_replace_them() -> None:
    with pytest.raises(NameClash):
        register_formula_function("sin", sympy.sin, torch=torch.sin, source="evil")
    with pytest.raises(NameClash):
        register_formula_function("mylog", sympy.log, aliases=("ln",), source="evil")
    assert FORMULA_FUNCTIONS.find("mylog") is None


@needs_special
def test_fresh_process_parses_and_evaluates_plugin_sinc() -> None:
    code = """
import numpy as np, torch
from physkan.symbolic.parse import parse_expression, lambdify_numpy, lambdify_torch
expr = parse_expression("sinc(3*x)", ["x"])
x = torch.tensor([[0.0], [0.4]], dtype=torch.float64, requires_grad=True)
t = lambdify_torch(expr, ["x"])(x)
t.sum().backward()
n = lambdify_numpy(expr, ["x"])(np.array([0.0, 0.4]))
ref = [1.0, float(np.sin(1.2) / 1.2)]
assert np.allclose(t.detach().numpy(), ref) and np.allclose(n, ref), (t, n)
assert torch.isfinite(x.grad).all() and abs(float(x.grad[0, 0])) < 1e-12, x.grad
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_found_formulas_use_plain_symbols() -> None:
    from physkan.strategies.base import Discovery

    xr = sympy.Symbol("x", real=True)  # strategies compute with real symbols internally
    found = Discovery(problem="p", type="regression", variables=["x"], outputs=["f"],
                      formulas=[sympy.sin(xr) + xr**2], recovered=None, recovery="",
                      metrics={}, seconds=0.0).formulas[0]  # fmt: skip
    assert sympy.diff(found, sympy.Symbol("x")) != 0
    assert sympy.diff(found, sympy.Symbol("x")) == sympy.cos(sympy.Symbol("x")) + 2 * sympy.Symbol("x")
    assert sympy.diff(parse_expression("x**3", ["x"]), sympy.Symbol("x")) == 3 * sympy.Symbol("x") ** 2


@pytest.mark.parametrize(
    "text",
    ["x + 10**10**8", "9**9**9**9", "x*1e999999", "x**(10**(10**10))", "exp(10**400)*x", "x + 1/0"],
)
def test_hostile_input_fails_fast_for_every_caller(text: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ExpressionError):
        parse_expression(text, ["x"])
    verdict = equivalent(text, "x", ["x"])  # equivalence reads strings through the same parse
    assert not verdict.equivalent and verdict.method == "none"
    with pytest.raises(ExpressionError):
        lambdify_torch(text, ["x"])
    assert time.perf_counter() - start < 5


def test_errors_name_the_problem() -> None:
    with pytest.raises(ExpressionError, match=r"unknown function 'sinn' \(did you mean sin"):
        parse_expression("sinn(x)", ["x"])
    with pytest.raises(ExpressionError, match=r"unknown symbol 'z'.*allowed names: x"):
        parse_expression("x + z", ["x"])
    with pytest.raises(ExpressionError, match="cannot parse.*unexpected"):
        parse_expression("x.__class__", ["x"])
    assert parse_expression("x + z", ["x"], strict=False).free_symbols == set(sympy.symbols("x z"))
    assert parse_expression("g*x", ["x"], {"g": 9.81}) == sympy.Float(9.81) * sympy.Symbol("x")
    assert parse_expression("lambda*x", ["x", "lambda"]) == sympy.Symbol("lambda") * sympy.Symbol("x")
