"""Safe parsing of the formula strings found in problem files.

Problem files hold ground truths such as ``"q_dot**2/2 + cos(q)"``. They are parsed with
:func:`sympy.parsing.sympy_parser.parse_expr` in a closed namespace: only the declared
variable names, the declared constants and a fixed set of functions are known, Python
builtins are not, and characters that have no business in a formula are refused before
anything is evaluated. ``^`` means power (as physicists write it).

The text is first parsed *without evaluation* and every constant sub-expression is
checked with bounded float arithmetic (:mod:`physkan.problems._bounded`): a power tower
such as ``9**9**9**9``, a constant beyond ``1e300``, a division by zero or a complex
constant is refused before sympy is allowed to compute anything, so parsing never hangs.
"""

from __future__ import annotations

import difflib
import keyword
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import sympy
from sympy.core.function import AppliedUndef
from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

from ._bounded import MAX_MAGNITUDE, check_constants, check_literals

__all__ = [
    "FUNCTIONS",
    "ExpressionError",
    "check_bounded",
    "check_name",
    "exact_number",
    "lambdify",
    "parse_expression",
    "parse_number",
]

#: name usable in a formula -> the sympy object it stands for (aliases included).
FUNCTIONS: dict[str, Any] = {
    "pi": sympy.pi,
    "E": sympy.E,
    "exp": sympy.exp,
    "log": sympy.log,
    "ln": sympy.log,
    "sqrt": sympy.sqrt,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "asin": sympy.asin,
    "acos": sympy.acos,
    "atan": sympy.atan,
    "arcsin": sympy.asin,
    "arccos": sympy.acos,
    "arctan": sympy.atan,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "tanh": sympy.tanh,
    "Abs": sympy.Abs,
    "abs": sympy.Abs,
}

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
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_MAX_LEN = 4000


class ExpressionError(ValueError):
    """A formula string that cannot be used; the message is one line for the user."""


def check_name(name: str) -> str:
    """Return ``name`` if it can name a variable or constant, else raise ``ExpressionError``.

    A name is an ASCII identifier starting with a letter that is neither a Python keyword
    (``lambda``) nor one of the known functions/constants (``exp``, ``pi``, ``E`` ...).
    """
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ExpressionError(
            f"{name!r} is not a valid name (use letters, digits and '_', starting with a letter)"
        )
    if keyword.iskeyword(name):
        raise ExpressionError(f"{name!r} is a Python keyword; use e.g. {name + '_'!r} instead")
    if name in FUNCTIONS:
        raise ExpressionError(f"{name!r} is a built-in function/constant name; choose another")
    return name


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_expression(
    text: str,
    names: Iterable[str],
    constants: Mapping[str, float] | None = None,
) -> sympy.Expr:
    """Parse ``text`` into a sympy expression over the plain symbols ``names``.

    Constants are substituted by their values. Symbols are created without assumptions
    (``sympy.Symbol("q")``) so they compare equal to symbols made elsewhere.

    Raises:
        ExpressionError: on a syntax error, a character outside the formula alphabet, an
            unknown function, or a free symbol that is neither in ``names`` nor in
            ``constants`` (the message lists the allowed names).
    """
    constants = dict(constants or {})
    names = list(names)
    if not isinstance(text, str):
        raise ExpressionError(f"expected a formula string, got {type(text).__name__}")
    if not text.strip():
        raise ExpressionError("empty formula")
    if len(text) > _MAX_LEN:
        raise ExpressionError(f"formula longer than {_MAX_LEN} characters")
    bad = _ALLOWED_CHARS.sub("", text)
    attribute = _ATTRIBUTE.search(text)
    shown = bad[:1] or ("__" if "__" in text else "") or (attribute[0] if attribute else "")
    if shown:
        raise ExpressionError(f"unexpected {shown!r} in formula {text!r}")
    local = {name: sympy.Symbol(name) for name in [*names, *constants]}
    local.update(FUNCTIONS)
    source = " ".join(text.split())
    check_literals(source)
    tree = _parse(source, text, local, evaluate=False)
    if not isinstance(tree, sympy.Expr):
        raise ExpressionError(f"{text!r} is not a numeric expression")
    check_constants(tree, text, constants)
    expr = _parse(source, text, local, evaluate=True)
    if not isinstance(expr, sympy.Expr):
        raise ExpressionError(f"{text!r} is not a numeric expression")
    unknown_funcs = sorted({type(f).__name__ for f in expr.atoms(AppliedUndef)})
    if unknown_funcs:
        known = ", ".join(sorted(k for k in FUNCTIONS if k not in ("pi", "E")))
        raise ExpressionError(
            f"unknown function {unknown_funcs[0]!r} in {text!r}"
            f"{_suggest(unknown_funcs[0], FUNCTIONS)}; known functions: {known}"
        )
    allowed = set(names) | set(constants)
    unknown = sorted(s.name for s in expr.free_symbols if s.name not in allowed)
    if unknown:
        listed = ", ".join(names) or "none"
        consts = f"; constants: {', '.join(constants)}" if constants else ""
        raise ExpressionError(
            f"unknown symbol {unknown[0]!r} in {text!r}{_suggest(unknown[0], allowed)}; "
            f"allowed names: {listed}{consts}"
        )
    if constants:
        expr = expr.subs({sympy.Symbol(k): exact_number(v) for k, v in constants.items()})
    if expr.has(sympy.zoo, sympy.oo, sympy.nan):
        raise ExpressionError(f"{text!r} is not finite (division by zero or an infinite value)")
    if expr.has(sympy.I):
        raise ExpressionError(f"{text!r} has a complex value; formulas must be real")
    return expr


def _parse(source: str, text: str, local: dict[str, Any], *, evaluate: bool) -> Any:
    """``parse_expr`` in the closed namespace; every failure becomes ``ExpressionError``."""
    try:
        return parse_expr(
            source,
            local_dict=dict(local),
            global_dict=dict(_GLOBALS),
            transformations=_TRANSFORMS,
            evaluate=evaluate,
        )
    except Exception as err:  # sympy raises many types on bad input
        if isinstance(err, SyntaxError):
            reason = err.msg or "invalid syntax"
        else:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ExpressionError(f"cannot parse {text!r}: {reason}") from None


def check_bounded(text: str) -> None:
    """Refuse a formula whose constants are huge, non-finite or complex (bounded work).

    Unlike :func:`parse_expression` any name is accepted (unknown names become symbols or
    functions), so this also guards formulas that other parsers read, such as composite
    library names (``"x**9**9**9"``). Raises ``ExpressionError``.
    """
    if not isinstance(text, str) or len(text) > _MAX_LEN:
        return
    if _ALLOWED_CHARS.sub("", text) or "__" in text or _ATTRIBUTE.search(text):
        return  # not a formula; the other parsers refuse it themselves
    check_literals(text)
    try:
        tree = parse_expr(
            " ".join(text.split()),
            global_dict=dict(_GLOBALS),
            transformations=_TRANSFORMS,
            evaluate=False,
        )
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


def parse_number(value: Any) -> float:
    """Turn a TOML constant (a number or a numeric formula such as ``"5/12"``) into a float."""
    if isinstance(value, bool):
        raise ExpressionError(f"expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value) if abs(value) < 1e301 else math.inf
        if not math.isfinite(number) or abs(number) > MAX_MAGNITUDE:
            raise ExpressionError(f"{value!r} is not a finite number of at most {MAX_MAGNITUDE:.0e}")
        return number
    try:
        return float(parse_expression(value, []))
    except (ExpressionError, TypeError):
        raise ExpressionError(
            f"{value!r} is not a number or a numeric formula such as '5/12'"
        ) from None


def lambdify(expr: sympy.Expr, names: list[str]) -> Callable[..., np.ndarray]:
    """Compile ``expr`` into a numpy function of ``names`` (positional arrays, float64).

    The result always has the broadcast shape of its arguments, also for constant
    expressions.
    """
    from physkan.plugins.numeric import numpy_modules  # plugin functions (erf, ...)

    symbols = [sympy.Symbol(n) for n in names]
    fn = sympy.lambdify(symbols, expr, modules=numpy_modules())

    def call(*args: np.ndarray) -> np.ndarray:
        arrays = [np.asarray(a, dtype=np.float64) for a in args]
        with np.errstate(all="ignore"):
            out = np.asarray(fn(*arrays), dtype=np.float64)
        shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else out.shape
        return np.broadcast_to(out, shape).copy()

    return call
