"""The one formula front end: parse formula strings, evaluate formulas in numpy and torch.

>>> from physkan.symbolic.parse import parse_expression, lambdify_numpy
>>> expr = parse_expression("q_dot^2/2 + cos(q)", ["q", "q_dot"])
>>> lambdify_numpy(expr, ["q", "q_dot"])([[0.0, 1.0]])
array([1.5])

* **One function table**, :data:`FORMULA_FUNCTIONS` (``sin``, ``ln``, ``atan2``, ``Max``,
  ``gaussian``, ``Heaviside``, ``pi``, ``E`` ...), that plugins extend through
  :func:`register_formula_function` (``sinc``, ``erf``, ``J0`` with the physkan-special
  plugin). A fresh process sees plugin names: a lookup runs the registry loaders first.
* **One symbol convention**: variables are plain ``sympy.Symbol(name)`` (no assumptions),
  what users and plugin authors type, so ``sympy.diff(expr, sympy.Symbol("x"))`` works.
  Code that needs real assumptions (equivalence proofs) substitutes them internally.
* **Bounded work on hostile input**: the text is parsed without evaluation first and every
  constant sub-expression is checked with float arithmetic (:mod:`._bounded`), so
  ``9**9**9**9``, ``10**10**8`` or ``1e999999`` raise :class:`ExpressionError` at once.
* **A closed namespace**: only the variables, the constants and the table are known;
  Python builtins are not, and characters with no business in a formula (quotes, ``;``,
  attribute access, dunders) are refused before anything is evaluated. ``^`` is power.
"""

from __future__ import annotations

import difflib
import keyword
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sympy
from sympy.core.function import AppliedUndef
from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

from ._bounded import check_constants, check_literals
from ._lambdify import (
    lambdify_arrays,
    lambdify_numpy,
    lambdify_torch,
    numpy_modules,
    numpy_namespace,
    torch_namespace,
)
from ._table import (
    FORMULA_FUNCTIONS,
    ExpressionError,
    FormulaFunction,
    register_formula_function,
    unregister_formula_function,
)

__all__ = [
    "FORMULA_FUNCTIONS",
    "ExpressionError",
    "FormulaFunction",
    "check_bounded",
    "exact_number",
    "formula_names",
    "lambdify_arrays",
    "lambdify_numpy",
    "lambdify_torch",
    "numpy_modules",
    "numpy_namespace",
    "parse_expression",
    "plain_symbols",
    "real_symbols",
    "register_formula_function",
    "torch_namespace",
    "unregister_formula_function",
]

VariableLike = str | sympy.Symbol

#: longest formula string :func:`parse_expression` reads (bounded work).
MAX_LENGTH = 4000

_GLOBALS: dict[str, Any] = {
    "__builtins__": {},
    "Symbol": sympy.Symbol,
    "Function": sympy.Function,
    "Integer": sympy.Integer,
    "Float": sympy.Float,
    "Rational": sympy.Rational,
    # emitted by parse_expr(evaluate=False) for the operators
    "Add": sympy.Add,
    "Mul": sympy.Mul,
    "Pow": sympy.Pow,
}
_TRANSFORMS = (*standard_transformations, convert_xor)
_ALLOWED_CHARS = re.compile(r"[A-Za-z0-9_+\-*/^().,\s]*")
_ATTRIBUTE = re.compile(r"\.\s*[A-Za-z_]")  # attribute access such as x.subs


def formula_names() -> dict[str, Any]:
    """Every name formulas may use (aliases included) -> the sympy object it stands for."""
    names = {n: e.sympy for n, e in FORMULA_FUNCTIONS.items() if e.parseable}
    for alias, target in FORMULA_FUNCTIONS.aliases().items():
        if target in names:
            names[alias] = names[target]
    return names


def _names(variables: Iterable[VariableLike]) -> list[str]:
    return [v.name if isinstance(v, sympy.Symbol) else str(v) for v in variables]


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _refuse_characters(text: str) -> None:
    bad = _ALLOWED_CHARS.sub("", text)
    attribute = _ATTRIBUTE.search(text)
    shown = bad[:1] or ("__" if "__" in text else "") or (attribute[0] if attribute else "")
    if shown:
        raise ExpressionError(
            f"cannot parse {text!r}: unexpected {shown!r} (only names, numbers, "
            "+ - * / ^ ** ( ) , and spaces are allowed)"
        )


def parse_expression(
    text: str,
    variables: Iterable[VariableLike],
    constants: Mapping[str, float] | None = None,
    *,
    strict: bool = True,
    max_length: int = MAX_LENGTH,
) -> sympy.Expr:
    """Parse ``text`` into a sympy expression over the plain symbols ``variables``.

    Args:
        text: the formula, e.g. ``"q_dot^2/2 + cos(q)"``.
        variables: names (or symbols, matched by name) usable in it; a variable may shadow
            a table name (``E``, ``gamma``) and may be a Python keyword (``lambda``).
        constants: name -> value; the names are usable and replaced by exact numbers.
        strict: refuse names that are neither variables, constants nor table names
            (``False``: they become plain symbols; unknown *functions* are always refused).
        max_length: longest accepted text.

    Returns:
        a sympy expression whose free symbols are plain ``sympy.Symbol(name)``.

    Raises:
        ExpressionError: a syntax error, a character outside the formula alphabet, an
            unknown function or name (with close matches and the allowed names), a
            constant part that is huge, non-finite or complex.
    """
    names = _names(variables)
    constants = dict(constants or {})
    if not isinstance(text, str):
        raise ExpressionError(f"expected a formula string, got {type(text).__name__}")
    if not text.strip():
        raise ExpressionError("empty formula")
    if len(text) > max_length:
        raise ExpressionError(f"formula longer than {max_length} characters")
    _refuse_characters(text)
    table = formula_names()
    local: dict[str, Any] = dict(table)
    source = " ".join(text.split())
    for name in [*names, *constants]:
        if keyword.iskeyword(name):
            safe = f"{name}_kw_"
            source = re.sub(rf"\b{name}\b", safe, source)
            local[safe] = sympy.Symbol(name)
        else:
            local[name] = sympy.Symbol(name)
    check_literals(source)
    tree = _parse(source, text, local, evaluate=False)
    check_constants(tree, text, constants)
    expr = _parse(source, text, local, evaluate=True)
    _check_names(expr, text, names, constants, table, strict)
    if constants:
        expr = expr.subs({sympy.Symbol(k): exact_number(v) for k, v in constants.items()})
    if expr.has(sympy.zoo, sympy.oo, sympy.nan):
        raise ExpressionError(f"{text!r} is not finite (division by zero or an infinite value)")
    if expr.has(sympy.I):
        raise ExpressionError(f"{text!r} has a complex value; formulas must be real")
    return expr


def _check_names(expr: sympy.Expr, text: str, names: list[str], constants: Mapping[str, float],
                 table: Mapping[str, Any], strict: bool) -> None:  # fmt: skip
    """Refuse unknown functions, and (``strict``) unknown symbols, with suggestions."""
    unknown_funcs = sorted({type(f).__name__ for f in expr.atoms(AppliedUndef)})
    if unknown_funcs:
        known = ", ".join(sorted(k for k, v in table.items() if callable(v)))
        raise ExpressionError(
            f"unknown function {unknown_funcs[0]!r}{_suggest(unknown_funcs[0], table)} in "
            f"{text!r}; known functions: {known}"
        )
    allowed = set(names) | set(constants)
    unknown = sorted(s.name for s in expr.free_symbols if s.name not in allowed)
    if strict and unknown:
        listed = ", ".join(names) or "none"
        consts = f"; constants: {', '.join(constants)}" if constants else ""
        raise ExpressionError(
            f"unknown symbol {unknown[0]!r} in {text!r}{_suggest(unknown[0], [*allowed, *table])}; "
            f"allowed names: {listed}{consts}"
        )


def _parse(source: str, text: str, local: dict[str, Any], *, evaluate: bool) -> sympy.Expr:
    """``parse_expr`` in the closed namespace; every failure becomes ``ExpressionError``."""
    try:
        expr = parse_expr(source, local_dict=dict(local), global_dict=dict(_GLOBALS),
                          transformations=_TRANSFORMS, evaluate=evaluate)  # fmt: skip
    except RecursionError:
        raise ExpressionError(f"{text!r}: formula is nested too deeply") from None
    except Exception as err:  # sympy raises many types on bad input
        if isinstance(err, SyntaxError):
            reason = err.msg or "invalid syntax"
        else:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ExpressionError(f"cannot parse {text!r}: {reason}") from None
    if not isinstance(expr, sympy.Expr):
        raise ExpressionError(f"{text!r} is not a numeric expression (got {type(expr).__name__})")
    return expr


def check_bounded(text: str) -> None:
    """Refuse a formula whose constants are huge, non-finite or complex (bounded work).

    Unlike :func:`parse_expression` any name is accepted (unknown names become symbols or
    functions), so this also guards text that other readers parse, such as composite
    library names (``"x**9**9**9"``). Text that is not a formula is left to its reader.

    Raises:
        ExpressionError: see :mod:`physkan.symbolic._bounded`.
    """
    if not isinstance(text, str) or len(text) > MAX_LENGTH:
        return
    if _ALLOWED_CHARS.sub("", text) or "__" in text or _ATTRIBUTE.search(text):
        return  # not a formula; the other parsers refuse it themselves
    check_literals(text)
    try:
        tree = parse_expr(" ".join(text.split()), global_dict=dict(_GLOBALS),
                          transformations=_TRANSFORMS, evaluate=False)  # fmt: skip
    except Exception:  # not parseable: nothing to evaluate, the caller reports it
        return
    if isinstance(tree, sympy.Basic):
        check_constants(tree, text)


def exact_number(value: float) -> sympy.Expr:
    """A sympy number equal to ``value``: an Integer or a short Rational when that is exact
    to double precision (``0.41666666666666669 -> 5/12``), else a Float."""
    value = float(value)
    if value.is_integer():
        return sympy.Integer(int(value))
    guess = sympy.nsimplify(value, rational=True, tolerance=1e-15)
    if isinstance(guess, sympy.Rational) and guess.q < 10**6 and float(guess) == value:
        return guess
    return sympy.Float(value)


def plain_symbols(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with every symbol replaced by the plain ``sympy.Symbol(name)`` (the public
    convention), e.g. for a formula built with ``real=True`` symbols internally. Objects
    that are not sympy expressions are returned unchanged."""
    if not isinstance(expr, sympy.Basic):
        return expr
    mapping = {s: sympy.Symbol(s.name) for s in expr.free_symbols
               if isinstance(s, sympy.Symbol) and s != sympy.Symbol(s.name)}  # fmt: skip
    return expr.xreplace(mapping) if mapping else expr


def real_symbols(expr: sympy.Expr, variables: Sequence[VariableLike] | None = None) -> sympy.Expr:
    """``expr`` with its symbols (those named in ``variables``, default all) replaced by
    ``sympy.Symbol(name, real=True)``, for simplifications that need real assumptions."""
    expr = sympy.sympify(expr)
    keep = None if variables is None else set(_names(variables))
    mapping = {s: sympy.Symbol(s.name, real=True) for s in expr.free_symbols
               if isinstance(s, sympy.Symbol) and (keep is None or s.name in keep)}  # fmt: skip
    return expr.xreplace(mapping)
