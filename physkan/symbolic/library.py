"""Registry of the univariate symbolic functions a KAN edge can be snapped to.

Each entry is a :class:`SymbolicFunction`: a guarded, elementwise torch implementation
(finite values and finite first and second derivatives for every finite input, in float32 and
float64, also under ``create_graph=True``), the matching sympy constructor, a pykan-like
complexity and, where the argument is restricted, its natural domain.

Guards, all with tiny effect away from the singularity:

* ``1/x``-type functions: ``|x| < 1e-4`` is replaced by ``±1e-4`` before inverting.
* ``log``, ``1/sqrt``, ``1/x^1.5``: the argument is clamped to ``>= 1e-8`` (``log``) /
  ``>= 1e-4``; ``sqrt`` and ``x^1.5`` clamp to ``>= 1e-8``.
* ``arcsin``/``arccos``/``arctanh``: the argument is clamped to ``[-1 + 1e-6, 1 - 1e-6]``.
* ``tan``: ``sin(x)/cos(x)`` with ``|cos(x)| >= 1e-4``.
* ``exp``/``sinh``/``cosh``: the argument is clamped to ``[-80, 80]``.

The registry :data:`SYMBOLIC` (a :class:`physkan.registry.Registry`) holds them; plugins
extend it with :func:`register_symbolic`, called by the plugin host at the first lookup in
any registry (this module never imports the plugin system).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sympy
import torch
from torch import Tensor

from physkan.errors import UserError
from physkan.kan.layer import set_symbolic_resolver
from physkan.registry import BUILTIN, Registry

__all__ = [
    "BUILTIN_SYMBOLIC",
    "DEFAULT_LIBRARY",
    "PHYSICS_LIBRARY",
    "SYMBOLIC",
    "IntervalCheck",
    "SymbolicFunction",
    "UnknownSymbolicError",
    "available_symbolic",
    "get_symbolic",
    "register_symbolic",
    "resolve_library",
]

#: ``(lo, hi) -> bool mask``: True where ``f`` is analytic on the whole interval ``[lo, hi]``.
IntervalCheck = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class SymbolicFunction:
    """One univariate function of the symbolic library.

    Attributes:
        name: canonical name, e.g. ``"sin"`` or ``"x^2"``.
        torch_fn: elementwise guarded torch implementation, shape-preserving.
        sympy_fn: builds the sympy expression ``f(arg)`` from a sympy argument.
        complexity: pykan-like cost of using this function (``x`` is 1, ``0`` is 0).
        description: one human-readable line.
        domain: natural domain ``(lo, hi)`` of the argument when restricted (bounds are
            treated as closed by the fitter), else ``None``.
        symmetry: ``"even"`` (f(-u) = f(u)), ``"odd"`` (f(-u) = -f(u)) or ``None``; the
            fitter uses it to search only ``a >= 0``.
        pole_free: optional vectorised check that an argument interval ``[lo, hi]`` holds no
            pole (``1/x``: does not contain 0; ``tan``: no ``pi/2 + k*pi``).
        period: period of a periodic function; the fitter reports ``b`` wrapped into
            ``[-period/2, period/2)``.
    """

    name: str
    torch_fn: Callable[[Tensor], Tensor]
    sympy_fn: Callable[[sympy.Expr], sympy.Expr]
    complexity: int
    description: str = ""
    domain: tuple[float, float] | None = None
    symmetry: str | None = None
    pole_free: IntervalCheck | None = None
    period: float | None = None

    def __call__(self, x: Tensor) -> Tensor:
        return self.torch_fn(x)

    def interval_ok(self, lo: Tensor, hi: Tensor) -> Tensor:
        """Bool mask: True where the argument interval ``[lo, hi]`` (same shapes) is legal."""
        ok = torch.isfinite(lo) & torch.isfinite(hi)
        if self.domain is not None:
            ok = ok & (lo >= self.domain[0]) & (hi <= self.domain[1])
        if self.pole_free is not None:
            ok = ok & self.pole_free(lo, hi)
        return ok


class UnknownSymbolicError(UserError, ValueError):
    """Raised by :func:`get_symbolic` for a name that is neither registered nor an alias."""


# --------------------------------------------------------------------------- guards

_INV_EPS = 1e-4
_ROOT_EPS = 1e-8
_LOG_EPS = 1e-8
_ARC_EPS = 1e-6
_EXP_MAX = 80.0


def _away_from_zero(x: Tensor, eps: float = _INV_EPS) -> Tensor:
    """``x`` with ``|x| < eps`` replaced by ``eps * sign(x)`` (``+eps`` at 0); zero grad there."""
    sign = torch.where(x < 0, -torch.ones_like(x), torch.ones_like(x))
    return torch.where(x.abs() < eps, sign * eps, x)


def _inv_pow(n: int) -> Callable[[Tensor], Tensor]:
    def fn(x: Tensor) -> Tensor:
        return 1.0 / _away_from_zero(x) ** n

    return fn


def _safe_sqrt(x: Tensor) -> Tensor:
    return torch.sqrt(x.clamp(min=_ROOT_EPS))


def _safe_pow15(x: Tensor) -> Tensor:
    return x.clamp(min=_ROOT_EPS) ** 1.5


def _safe_rsqrt(x: Tensor) -> Tensor:
    return torch.rsqrt(x.clamp(min=_INV_EPS))


def _safe_inv_pow15(x: Tensor) -> Tensor:
    return x.clamp(min=_INV_EPS) ** -1.5


def _safe_log(x: Tensor) -> Tensor:
    return torch.log(x.clamp(min=_LOG_EPS))


def _safe_exp(x: Tensor) -> Tensor:
    return torch.exp(x.clamp(-_EXP_MAX, _EXP_MAX))


def _safe_tan(x: Tensor) -> Tensor:
    return torch.sin(x) / _away_from_zero(torch.cos(x))


def _clamp_unit(x: Tensor) -> Tensor:
    return x.clamp(-1.0 + _ARC_EPS, 1.0 - _ARC_EPS)


def _zero(x: Tensor) -> Tensor:
    return x * 0.0


# --------------------------------------------------------------------------- pole checks


def _no_zero_inside(lo: Tensor, hi: Tensor) -> Tensor:
    return (lo > 0) | (hi < 0)


def _no_tan_pole(lo: Tensor, hi: Tensor) -> Tensor:
    k_lo = torch.floor((lo - math.pi / 2) / math.pi)
    k_hi = torch.floor((hi - math.pi / 2) / math.pi)
    return k_lo == k_hi


# --------------------------------------------------------------------------- registry

#: alias -> canonical name of the built-in functions (lookups are normalised first).
BUILTIN_ALIASES: dict[str, str] = {
    "id": "x",
    "identity": "x",
    "linear": "x",
    "x^1": "x",
    "x2": "x^2",
    "square": "x^2",
    "x3": "x^3",
    "cube": "x^3",
    "x4": "x^4",
    "x5": "x^5",
    "inv": "1/x",
    "reciprocal": "1/x",
    "x^-1": "1/x",
    "inv2": "1/x^2",
    "x^-2": "1/x^2",
    "inv3": "1/x^3",
    "x^-3": "1/x^3",
    "inv4": "1/x^4",
    "x^-4": "1/x^4",
    "x^0.5": "sqrt",
    "x^1/2": "sqrt",
    "x^(1/2)": "sqrt",
    "x^(3/2)": "x^1.5",
    "x^3/2": "x^1.5",
    "rsqrt": "1/sqrt",
    "invsqrt": "1/sqrt",
    "1/sqrt(x)": "1/sqrt",
    "x^-0.5": "1/sqrt",
    "x^-1.5": "1/x^1.5",
    "ln": "log",
    "asin": "arcsin",
    "acos": "arccos",
    "atan": "arctan",
    "atanh": "arctanh",
    "sign": "sgn",
    "gauss": "gaussian",
    "zero": "0",
    "exp(-x^2)": "gaussian",
    "sin(x)": "sin",
    "cos(x)": "cos",
    "exp(x)": "exp",
    "log(x)": "log",
    "sqrt(x)": "sqrt",
}


def _normalise(name: str) -> str:
    return name.strip().lower().replace(" ", "").replace("**", "^")


#: canonical name (or alias) -> function; plugins' functions join at the first lookup.
SYMBOLIC: Registry[SymbolicFunction] = Registry(
    "symbolic function", error=UnknownSymbolicError, normalise=_normalise
)


def register_symbolic(
    fn: SymbolicFunction,
    *,
    overwrite: bool = False,
    source: str = BUILTIN,
    aliases: tuple[str, ...] = (),
) -> None:
    """Add ``fn`` to the registry under ``fn.name`` (and the given normalised ``aliases``).

    Args:
        overwrite: replace an entry of the same name (a plugin never replaces a built-in).
        source: who registers it (:data:`physkan.registry.BUILTIN` or a plugin's name).

    Raises:
        ValueError: the name (or an alias of it) is already taken and ``overwrite`` is False
            (:class:`~physkan.registry.NameClash`, a ``ValueError``).
    """
    if not fn.name or not isinstance(fn.name, str):
        raise ValueError("a symbolic function needs a non-empty string name")
    SYMBOLIC.register(fn.name, fn, source=source, aliases=aliases, replace=overwrite)


def available_symbolic() -> list[str]:
    """Names of all registered functions, in registration order (built-ins, then plugins)."""
    return SYMBOLIC.names()


def get_symbolic(name: str | SymbolicFunction) -> SymbolicFunction:
    """Look up a function by canonical name or alias (``"x**2"``, ``"ln"``, ``"asin"``...).

    Raises:
        UnknownSymbolicError: with the closest registered names in the message.
    """
    if isinstance(name, SymbolicFunction):
        return name
    fn = SYMBOLIC.find(str(name))
    if fn is not None:
        return fn
    key = _normalise(str(name))
    names = SYMBOLIC.names()
    lowered = {k.lower(): k for k in names}
    if key in lowered:
        return SYMBOLIC.get(lowered[key])
    if any(op in str(name) for op in "()+-*/"):
        from physkan.symbolic.composite import composite_function

        composite = composite_function(str(name))
        if composite is not None:
            return composite
    aliases = SYMBOLIC.aliases()
    close = difflib.get_close_matches(key, names + list(aliases), n=5, cutoff=0.5)
    close = list(dict.fromkeys(aliases.get(c, c) for c in close))
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownSymbolicError(
        f"unknown symbolic function {name!r}.{hint} Available: {', '.join(names)}"
    )


set_symbolic_resolver(get_symbolic)  # KAN layers evaluate symbolic edges with this library


def resolve_library(
    names: Sequence[str | SymbolicFunction] | None = None,
) -> dict[str, SymbolicFunction]:
    """Map a list of names (aliases allowed) to ``{canonical name: function}``.

    ``None`` gives :data:`DEFAULT_LIBRARY`. Duplicates are dropped, order is kept.
    """
    if names is None:
        names = DEFAULT_LIBRARY
    if isinstance(names, str):
        names = [names]
    out: dict[str, SymbolicFunction] = {}
    for n in names:
        fn = get_symbolic(n)
        out.setdefault(fn.name, fn)
    return out


_BUILTIN_NAMES: list[str] = []


def _add(
    name: str,
    torch_fn: Callable[[Tensor], Tensor],
    sympy_fn: Callable[[sympy.Expr], sympy.Expr],
    complexity: int,
    description: str,
    *,
    domain: tuple[float, float] | None = None,
    symmetry: str | None = None,
    pole_free: IntervalCheck | None = None,
    period: float | None = None,
) -> None:
    _BUILTIN_NAMES.append(name)
    register_symbolic(
        SymbolicFunction(
            name=name,
            torch_fn=torch_fn,
            sympy_fn=sympy_fn,
            complexity=complexity,
            description=description,
            domain=domain,
            symmetry=symmetry,
            pole_free=pole_free,
            period=period,
        ),
        aliases=tuple(a for a, target in BUILTIN_ALIASES.items() if target == name),
    )


_INF = math.inf
_POS = (0.0, _INF)
_UNIT = (-1.0, 1.0)
_half = sympy.Rational(1, 2)
_three_halves = sympy.Rational(3, 2)

_add("x", lambda x: x, lambda x: x, 1, "identity", symmetry="odd")
_add("x^2", lambda x: x**2, lambda x: x**2, 2, "square", symmetry="even")
_add("x^3", lambda x: x**3, lambda x: x**3, 3, "cube", symmetry="odd")
_add("x^4", lambda x: x**4, lambda x: x**4, 3, "fourth power", symmetry="even")
_add("x^5", lambda x: x**5, lambda x: x**5, 3, "fifth power", symmetry="odd")
_add(
    "1/x", _inv_pow(1), lambda x: 1 / x, 2, "reciprocal", symmetry="odd", pole_free=_no_zero_inside
)
_add(
    "1/x^2",
    _inv_pow(2),
    lambda x: x**-2,
    2,
    "inverse square",
    symmetry="even",
    pole_free=_no_zero_inside,
)
_add(
    "1/x^3",
    _inv_pow(3),
    lambda x: x**-3,
    3,
    "inverse cube",
    symmetry="odd",
    pole_free=_no_zero_inside,
)
_add(
    "1/x^4",
    _inv_pow(4),
    lambda x: x**-4,
    4,
    "inverse fourth power",
    symmetry="even",
    pole_free=_no_zero_inside,
)
_add("sqrt", _safe_sqrt, sympy.sqrt, 2, "square root", domain=(0.0, _INF))
_add("x^1.5", _safe_pow15, lambda x: x**_three_halves, 4, "x to the 3/2", domain=(0.0, _INF))
_add(
    "1/sqrt",
    _safe_rsqrt,
    lambda x: 1 / sympy.sqrt(x),
    2,
    "inverse square root",
    domain=_POS,
    pole_free=_no_zero_inside,
)
_add(
    "1/x^1.5",
    _safe_inv_pow15,
    lambda x: x**-_three_halves,
    4,
    "x to the -3/2",
    domain=_POS,
    pole_free=_no_zero_inside,
)
_add("exp", _safe_exp, sympy.exp, 2, "exponential")
_add("log", _safe_log, sympy.log, 2, "natural logarithm", domain=_POS, pole_free=_no_zero_inside)
_add("abs", torch.abs, sympy.Abs, 3, "absolute value", symmetry="even")
_add("sin", torch.sin, sympy.sin, 2, "sine", symmetry="odd", period=2 * math.pi)
_add("cos", torch.cos, sympy.cos, 2, "cosine", symmetry="even", period=2 * math.pi)
_add(
    "tan",
    _safe_tan,
    sympy.tan,
    3,
    "tangent",
    symmetry="odd",
    pole_free=_no_tan_pole,
    period=math.pi,
)
_add("tanh", torch.tanh, sympy.tanh, 3, "hyperbolic tangent", symmetry="odd")
_add("sgn", torch.sign, sympy.sign, 3, "sign function", symmetry="odd")
_add(
    "arcsin",
    lambda x: torch.asin(_clamp_unit(x)),
    sympy.asin,
    4,
    "inverse sine",
    domain=_UNIT,
    symmetry="odd",
)
_add("arccos", lambda x: torch.acos(_clamp_unit(x)), sympy.acos, 4, "inverse cosine", domain=_UNIT)
_add("arctan", torch.atan, sympy.atan, 4, "inverse tangent", symmetry="odd")
_add(
    "arctanh",
    lambda x: torch.atanh(_clamp_unit(x)),
    sympy.atanh,
    4,
    "inverse hyperbolic tangent",
    domain=_UNIT,
    symmetry="odd",
)
_add(
    "gaussian",
    lambda x: torch.exp(-(x**2)),
    lambda x: sympy.exp(-(x**2)),
    3,
    "exp(-x^2)",
    symmetry="even",
)
_add(
    "sinh",
    lambda x: torch.sinh(x.clamp(-_EXP_MAX, _EXP_MAX)),
    sympy.sinh,
    3,
    "hyperbolic sine",
    symmetry="odd",
)
_add(
    "cosh",
    lambda x: torch.cosh(x.clamp(-_EXP_MAX, _EXP_MAX)),
    sympy.cosh,
    3,
    "hyperbolic cosine",
    symmetry="even",
)
_add("0", _zero, lambda x: sympy.Integer(0), 0, "zero function (pruned edge)")

#: Default library of :func:`resolve_library` / ``suggest_symbolic``: pykan's set without
#: ``arccos`` (``arccos(u) = pi/2 - arcsin(u)`` is the same shape under the affine fit) and
#: without ``1/x^1.5``, ``sinh`` and ``cosh`` (rarely needed; opt in by name).
DEFAULT_LIBRARY: tuple[str, ...] = (
    "x", "x^2", "x^3", "x^4", "x^5",
    "1/x", "1/x^2", "1/x^3", "1/x^4",
    "sqrt", "x^1.5", "1/sqrt",
    "exp", "log", "abs",
    "sin", "cos", "tan", "tanh", "sgn",
    "arcsin", "arctan", "arctanh",
    "gaussian", "0",
)  # fmt: skip

#: Default library of :func:`~physkan.symbolic.edges.auto_symbolic`: the common physics
#: functions, most common first (the order breaks ties between equally simple functions
#: that fit equally well: ``sin`` before ``sqrt``). Rare shapes (``tan``, ``arcsin``,
#: ``sgn``...) often fit a noisy spline by accident; opt in by name.
PHYSICS_LIBRARY: tuple[str, ...] = (
    "x", "x^2", "sin", "cos", "exp", "sqrt", "1/x", "log", "x^3", "1/x^2", "1/sqrt",
    "gaussian", "tanh", "x^4", "arctan", "abs", "0",
)  # fmt: skip

#: names of the functions shipped with physkan (plugins add to the registry later).
BUILTIN_SYMBOLIC: tuple[str, ...] = tuple(_BUILTIN_NAMES)
