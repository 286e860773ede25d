"""The problem-file layer over the one formula front end, :mod:`physkan.symbolic.parse`.

Problem files hold ground truths such as ``"q_dot**2/2 + cos(q)"``; they are parsed by
:func:`physkan.symbolic.parse.parse_expression` (closed namespace, bounded work on hostile
input, plain symbols, plugin functions included). This module adds what only problem files
need: :func:`check_name` for the names a file declares and :func:`parse_number` for its
TOML constants. The validators turn :class:`ExpressionError` into a ``ProblemError`` that
names the field.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from physkan.symbolic._bounded import MAX_MAGNITUDE
from physkan.symbolic.parse import (
    ExpressionError,
    check_bounded,
    exact_number,
    formula_names,
    parse_expression,
)
from physkan.symbolic.parse import lambdify_arrays as lambdify

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

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


class _FormulaNames(Mapping[str, Any]):
    """Read-only live view: name usable in a formula -> the sympy object it stands for.

    Extend it with :func:`physkan.symbolic.parse.register_formula_function`.
    """

    def __getitem__(self, name: str) -> Any:
        return formula_names()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(formula_names())

    def __len__(self) -> int:
        return len(formula_names())


#: name usable in a formula -> the sympy object it stands for (aliases and plugins included).
FUNCTIONS: Mapping[str, Any] = _FormulaNames()


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
    if name in formula_names():
        raise ExpressionError(f"{name!r} is a built-in function/constant name; choose another")
    return name


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
