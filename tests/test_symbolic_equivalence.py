"""Tests of formula parsing and equivalence checking (physkan.symbolic.equivalence)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import sympy

from physkan.symbolic.equivalence import Equivalence, equivalent, parse_expression

q, q_dot = sympy.symbols("q q_dot")
FEYNMAN = Path("/work/shared/data/feynman_dev.csv")


def test_parse_aliases_and_shadowing() -> None:
    expr = parse_expression("ln(x) + arcsin(x/2) + pi*x^2 + sgn(x)", ["x"])
    x = sympy.Symbol("x")  # the one symbol convention: plain symbols
    assert expr == sympy.log(x) + sympy.asin(x / 2) + sympy.pi * x**2 + sympy.sign(x)
    shadow = parse_expression("E*gamma + lambda + beta", ["E", "gamma", "lambda", "beta"])
    assert {s.name for s in shadow.free_symbols} == {"E", "gamma", "lambda", "beta"}
    assert parse_expression("E", ["x"]) == sympy.E


def test_parse_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="cannot parse"):
        parse_expression("x +* 2", ["x"])
    with pytest.raises(ValueError, match=r"'sinn' \(did you mean sin"):
        parse_expression("sinn(x)", ["x"])
    with pytest.raises(ValueError, match="'z'.*allowed names: x"):
        parse_expression("x + z", ["x"])
    for evil in ("__import__('os')", "x.__class__", "x; y", "(1).real"):
        with pytest.raises(ValueError, match="cannot parse"):
            parse_expression(evil, ["x", "y"], strict=False)


def test_symbolic_positive() -> None:
    res = equivalent("q_dot**2/2 - (1 - cos(q))", q_dot**2 / 2 + sympy.cos(q) - 1, [q, q_dot])
    assert res.equivalent and res.method == "symbolic"
    assert bool(res)


def test_numeric_positive_with_float_coefficients() -> None:
    res = equivalent("2.0000001*q**2", "2*q^2", ["q"], rtol=1e-6)
    assert res.equivalent and res.method == "numeric"
    assert res.max_rel_error == pytest.approx(5e-8, rel=1e-3)


def test_negative_reports_worst_point() -> None:
    res = equivalent("q_dot**2/2 + 1.03*cos(q)", "q_dot**2/2 + cos(q)", ["q", "q_dot"])
    assert not res.equivalent and res.method == "numeric"
    assert res.max_rel_error is not None and res.max_rel_error > 1e-3
    assert "max relative error" in res.reason
    assert "q=" in res.reason and "q_dot=" in res.reason


def test_ranges_are_used() -> None:
    # |x| == x only for positive x.
    assert equivalent("Abs(x)", "x", ["x"]).equivalent
    res = equivalent("Abs(x)", "x", ["x"], ranges={"x": (-2.0, 2.0)})
    assert not res.equivalent and "x=-" in res.reason


def test_scale_offset() -> None:
    truth = "q_dot**2/2 + cos(q)"
    res = equivalent("3*(q_dot**2/2 + cos(q)) + 4", truth, ["q", "q_dot"], up_to="scale_offset")
    assert res.equivalent
    assert res.scale == pytest.approx(3.0) and res.offset == pytest.approx(4.0)
    neg = equivalent("-0.5*q_dot**2/2 - 0.5*cos(q) + 7", truth, ["q", "q_dot"],
                     up_to="scale_offset")  # fmt: skip
    assert neg.equivalent and neg.scale == pytest.approx(-0.5) and neg.offset == pytest.approx(7)
    bad = equivalent("3*(q_dot**2/2 + cos(2*q))", truth, ["q", "q_dot"], up_to="scale_offset")
    assert not bad.equivalent and "residual" in bad.reason
    assert not equivalent("3*(q_dot**2/2 + cos(q)) + 4", truth, ["q", "q_dot"]).equivalent


def test_scale_offset_rejects_constant_found() -> None:
    res = equivalent("5 + 0*q", "q**2", ["q"], up_to="scale_offset")
    assert not res.equivalent


def test_offset() -> None:
    res = equivalent("q**2 + 1.5", "q**2", ["q"], up_to="offset")
    assert res.equivalent and res.offset == pytest.approx(1.5) and res.scale == 1.0
    res = equivalent("q**2 + 1.5 + 1e-2*q", "q**2", ["q"], up_to="offset")
    assert not res.equivalent and res.offset is not None
    assert not equivalent("2*q**2", "q**2", ["q"], up_to="offset").equivalent


def test_foreign_symbol_and_domain_problems() -> None:
    res = equivalent("q + z", "q", ["q"])
    assert not res.equivalent and res.method == "none"
    assert "found depends on z which is not among the variables" in res.reason
    res = equivalent(sympy.sqrt(q - 5), sympy.sqrt(q - 5) + 0 * q + sympy.Float(0), ["q"])
    assert res.equivalent  # symbolic proof needs no points
    res = equivalent("sqrt(q - 5) + 1e-3", "sqrt(q - 5)", ["q"])
    assert not res.equivalent and res.method == "none"
    assert "finite" in res.reason and "ranges" in res.reason
    with pytest.raises(ValueError, match="up_to"):
        equivalent("q", "q", ["q"], up_to="scale")  # type: ignore[arg-type]


def test_symbols_matched_by_name_and_bad_strings() -> None:
    plain = sympy.Symbol("x")
    positive = sympy.Symbol("x", positive=True)
    assert equivalent(plain**2, positive**2, ["x"]).equivalent
    res = equivalent("x +* 1", "x", ["x"])
    assert isinstance(res, Equivalence) and not res.equivalent and "cannot read" in res.reason


def test_large_expressions_do_not_hang_and_are_checked_numerically() -> None:
    big = " + ".join(f"sin({i}*x)*exp(x/{i})*cos(x**2+{i})" for i in range(1, 25))
    res = equivalent(big, big + " + 1e-3", ["x"])
    assert not res.equivalent and res.method == "numeric"
    same = equivalent(big, f"({big})*1", ["x"])
    assert same.equivalent


def _feynman_rows() -> list[dict[str, str]]:
    with FEYNMAN.open() as fh:
        return list(csv.DictReader(fh))


@pytest.mark.skipif(not FEYNMAN.exists(), reason="Feynman dev set not available")
def test_feynman_dev_formulas_parse_and_self_compare() -> None:
    rows = _feynman_rows()
    assert rows
    for row in rows:
        specs = [v.split(":") for v in row["variables"].split()]
        names = [s[0] for s in specs]
        ranges = {s[0]: (float(s[1]), float(s[2])) for s in specs}
        expr = parse_expression(row["formula"], names)
        assert {s.name for s in expr.free_symbols} <= set(names), row["name"]
        res = equivalent(row["formula"], expr, names, ranges, n_points=200)
        assert res.equivalent, (row["name"], res.reason)


@pytest.mark.skipif(not FEYNMAN.exists(), reason="Feynman dev set not available")
def test_feynman_rewritten_gaussian() -> None:
    row = next(r for r in _feynman_rows() if r["name"] == "I.6.2")
    rewritten = "0.3989422804014327*exp(-0.5*theta**2/sigma**2)/sigma"
    ranges = {"sigma": (1.0, 3.0), "theta": (1.0, 3.0)}
    assert equivalent(rewritten, row["formula"], ["sigma", "theta"], ranges).equivalent
    wrong = "0.3989422804014327*exp(-0.5*theta**2/sigma**2)"
    assert not equivalent(wrong, row["formula"], ["sigma", "theta"], ranges).equivalent
