"""Bounded checks of the constant parts of an *unevaluated* sympy expression.

``parse_expr(..., evaluate=False)`` builds the expression tree without computing anything.
:func:`check_constants` walks that tree bottom-up and evaluates every constant
sub-expression with plain (complex) float arithmetic, which costs O(size of the tree) no
matter how large the numbers are. It refuses, before sympy evaluates anything exactly:

* powers whose result has more than :data:`MAX_POWER_DIGITS` digits either way
  (``9**9**9**9``, ``10**10**8``, ``10**(-10**8)``), which would make sympy compute
  integers with billions of digits;
* constants larger than :data:`MAX_MAGNITUDE` in absolute value (``exp(1000)``) and
  non-finite ones (``1/0``, ``log(0)``);
* complex constants (``sqrt(-1)``, ``log(-2)``), since formulas are real.

:func:`physkan.symbolic.parse.parse_expression` runs these checks on every formula it
reads, whoever the caller is.
"""

from __future__ import annotations

import cmath
import math
import re
from collections.abc import Callable, Mapping

import sympy

from physkan.errors import PhyskanError

from ._table import ExpressionError

__all__ = ["MAX_MAGNITUDE", "MAX_POWER_DIGITS", "check_constants", "check_literals"]

#: largest absolute value a constant sub-expression may have.
MAX_MAGNITUDE = 1e300
#: a constant power ``b**e`` may have at most this many decimal digits (either way).
MAX_POWER_DIGITS = 1000

_FUNCTIONS: dict[type, Callable[[complex], complex]] = {
    sympy.exp: cmath.exp,
    sympy.log: cmath.log,
    sympy.sin: cmath.sin,
    sympy.cos: cmath.cos,
    sympy.tan: cmath.tan,
    sympy.asin: cmath.asin,
    sympy.acos: cmath.acos,
    sympy.atan: cmath.atan,
    sympy.sinh: cmath.sinh,
    sympy.cosh: cmath.cosh,
    sympy.tanh: cmath.tanh,
    sympy.Abs: lambda z: complex(abs(z)),
}


#: a number literal with an exponent (``1e999999``), not inside a name such as ``x1e5``.
_LITERAL = re.compile(r"(?<![A-Za-z0-9_.])(\d+\.?\d*|\.\d+)[eE]([+-]?\d+)")


def check_literals(text: str) -> None:
    """Refuse number literals such as ``1e999999`` before sympy reads them.

    sympy turns a literal into an exact binary Float, which for a decimal exponent in
    the millions takes minutes; exponents beyond :data:`MAX_POWER_DIGITS` are refused.
    """
    for match in _LITERAL.finditer(text):
        exponent = match.group(2).lstrip("+-")
        if len(exponent) > 6 or int(exponent) > MAX_POWER_DIGITS:
            raise ExpressionError(
                f"{text!r}: number {match.group(0)[:40]!r} is out of range "
                f"(exponents up to {MAX_POWER_DIGITS})"
            )


class _Refused(PhyskanError):
    """Internal: the reason a constant is refused (turned into ``ExpressionError``)."""


def check_constants(
    expr: sympy.Basic, text: str, constants: Mapping[str, float] | None = None
) -> None:
    """Raise ``ExpressionError`` if a constant part of the unevaluated ``expr`` is unusable.

    Args:
        expr: the result of ``parse_expr(text, evaluate=False)``.
        text: the formula as written (quoted in the message).
        constants: values of the symbols that are constants of the problem.
    """
    try:
        _value(expr, dict(constants or {}))
    except _Refused as err:
        raise ExpressionError(f"{text!r}: {err}") from None
    except RecursionError:
        raise ExpressionError(f"{text!r}: formula is nested too deeply") from None


def _checked(value: complex, what: sympy.Basic) -> complex:
    if not (cmath.isfinite(value)):
        raise _Refused(f"{_short(what)} is not finite (division by zero or an infinite value)")
    if abs(value) > MAX_MAGNITUDE:
        raise _Refused(f"{_short(what)} is too large (above {MAX_MAGNITUDE:.0e})")
    if abs(value.imag) > 1e-12 * max(abs(value.real), 1.0):
        raise _Refused(f"{_short(what)} is not a real number; formulas must be real")
    return complex(value.real, 0.0) if value.imag else value


def _short(node: sympy.Basic) -> str:
    if isinstance(node, sympy.Float):  # printing every digit of 1e300 is pointless
        return f"{float(node):.6g}"
    try:
        shown = sympy.sstr(node, order="none")
    except Exception:  # printing an odd tree must not hide the real message
        shown = type(node).__name__
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _value(node: sympy.Basic, constants: dict[str, float]) -> complex | None:
    """The value of ``node`` if it is constant (checked), else ``None``."""
    if not isinstance(node, sympy.Basic):
        return None
    if isinstance(node, sympy.Symbol):
        if node.name in constants:
            return _checked(complex(constants[node.name]), node)
        return None
    if isinstance(node, sympy.Integer):
        if int(node).bit_length() > 1100:
            raise _Refused(f"integer with {len(str(abs(int(node))))} digits is too large")
        return _checked(complex(int(node)), node)
    if isinstance(node, (sympy.Number, sympy.NumberSymbol)):
        try:
            number = float(node)
            if math.isinf(number):
                raise _Refused(f"a number in it is too large (above {MAX_MAGNITUDE:.0e})")
            return _checked(complex(number), node)
        except (OverflowError, TypeError, ValueError):
            raise _Refused(f"{_short(node)} is not a finite number") from None
    args = [_value(arg, constants) for arg in node.args]  # children are checked first
    if not node.args or any(a is None for a in args):
        return None
    values: list[complex] = [a for a in args if a is not None]
    try:
        if isinstance(node, sympy.Add):
            result = complex(math.fsum(v.real for v in values), sum(v.imag for v in values))
        elif isinstance(node, sympy.Mul):
            result = complex(1.0)
            for v in values:
                result *= v
        elif isinstance(node, sympy.Pow):
            result = _power(values[0], values[1], node)
        elif type(node) in _FUNCTIONS and len(values) == 1:
            result = _FUNCTIONS[type(node)](values[0])
        else:  # a function this checker does not know: its arguments were checked
            return None
    except (OverflowError, ZeroDivisionError, ValueError):
        raise _Refused(f"{_short(node)} is not finite or too large") from None
    return _checked(result, node)


def _power(base: complex, exp: complex, node: sympy.Basic) -> complex:
    """``base ** exp`` after checking that the result has a sane number of digits."""
    if base == 0:
        if exp.real < 0 or (exp.real == 0 and exp.imag != 0):
            raise ZeroDivisionError
        return complex(1.0) if exp == 0 else complex(0.0)
    digits = (exp * cmath.log(base)).real / math.log(10)
    if abs(digits) > MAX_POWER_DIGITS:
        raise _Refused(
            f"{_short(node)} is about 10^{digits:.3g}, beyond what a formula can use "
            f"(at most 10^{MAX_POWER_DIGITS} either way)"
        )
    if base.imag == 0 and exp.imag == 0 and (base.real > 0 or float(exp.real).is_integer()):
        return complex(base.real**exp.real)
    return base**exp
