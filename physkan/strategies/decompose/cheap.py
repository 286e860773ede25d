"""Network-free tests of a decomposition node, run before any surrogate is trained.

At every node of the recursion (the root, each separable part, each node after a symmetry
substitution or an outer-function inversion) the node's own data ``(x (N, n), y (N,))`` go
through the cheap exact tests first, each on ``T(y)`` for the invertible outer functions
``T`` valid on ``y`` (:data:`~physkan.strategies.decompose.leaves.TRANSFORMS`):

- a rational law ``T(y) = P(x)/Q(x)`` with small polynomials (one SVD per degree,
  :mod:`.rational`: sums of products, ``(u + v)/(1 + u·v/c²)``, squared distances), also
  with one variable ``x_i`` replaced by ``cos(x_i)`` or ``sin(x_i)``, or a pair
  ``x_i, x_j`` replaced by ``cos(x_i·x_j)`` or ``sin(x_i·x_j)`` (``2·U·(1 - cos(k·d))``);
- a product law ``T(y) = K·prod_i g_i(x_i)`` (rank-one alternating least squares with
  library factors, :func:`physkan.strategies.product.product_formula`), and the same with an
  offset ``c + K·prod_i g_i(x_i)``;
- a product law of ``log|w ± 1|``, ``w`` in ``1/y``, ``y/x_i``, ``x_i/y`` (outer chains of
  depth two: ``1/(exp(ħω/(k_b·T)) - 1)``, ``I_0·(exp(q·V/(k_b·T)) - 1)``);
- one variable split off a product law, ``f1(x_i) + f2(x_i)·prod_{j≠i} g_j(x_j)``
  (:mod:`.split`: ``n_0·exp(-m·g·x/(k_b·T))`` after a log, ``n_0·(1 + p·E·cos θ/(k_b·T))``).

:func:`cheap_candidates` yields the formulas of ``y`` lazily, cheapest first; the caller
checks each on held-out data and stops at the first that fits.

On noisy data the noise std of ``y`` is carried through each ``T`` (:mod:`.noise`) and the
rational laws are weighted fits judged by their weighted residuals (:mod:`.rational`); the
shifted targets ``log|w + s|`` (and ``log|y/x_i|``) then also get rational laws of degree
up to :data:`NOISY_SHIFTED_DEGREE`, since the product test, which weighs every sample alike,
drowns in the noise these logs amplify.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence

import sympy
import torch
from torch import Tensor

from physkan.budget import current_budget
from physkan.strategies.decompose.leaves import Transform, transforms_for
from physkan.strategies.decompose.noise import propagate_sigma
from physkan.strategies.decompose.rational import rational_fit
from physkan.strategies.decompose.split import split_candidates
from physkan.strategies.product import product_formula
from physkan.symbolic.simplify import current_noise

__all__ = ["RATIONAL_TRANSFORMS", "cheap_candidates"]

_log = logging.getLogger(__name__)

#: Transforms whose rational laws are tried (``1/y`` is covered by ``P/Q`` itself).
RATIONAL_TRANSFORMS: tuple[str, ...] = ("identity", "square", "arcsin", "log")
#: Functions that may stand for one variable in a rational law, and the transforms they are tried on.
TRIG = {"cos": (torch.cos, sympy.cos), "sin": (torch.sin, sympy.sin)}
TRIG_TRANSFORMS: tuple[str, ...] = ("identity", "square")
#: Seconds the tests of one node may take at most, and their share of the budget left.
CHEAP_SECONDS = 15.0
CHEAP_SHARE = 0.3
#: Highest total degree of the polynomials of a rational law (on exact, on noisy data).
RATIONAL_DEGREE = 6
NOISY_DEGREE = 4
#: Tolerances at or below this are exact fits (noise-free data, not a surrogate's table).
EXACT_RATIONAL = 1e-6
#: Highest degree and most monomials of the rational laws of shifted targets (noisy data):
#: an exponent such as ``q·V/(k_b·T)``; a longer law of a log is an approximant of another law.
NOISY_SHIFTED_DEGREE = 2
NOISY_SHIFTED_TERMS = 3
#: Transforms whose product laws are tried (a product's square or inverse is a product too).
PRODUCT_TRANSFORMS: tuple[str, ...] = ("identity", "log", "arcsin")
#: Transforms on which a product with an offset is tried (the rank-one fit with an offset is
#: the slowest test here).
OFFSET_TRANSFORMS: tuple[str, ...] = ("identity", "log")


#: ``(transform, sign, T(y) (N,), per-sample noise std of T(y) (N,) or None on exact data)``.
Target = tuple[Transform, int, Tensor, "Tensor | None"]


def _targets(y: Tensor, sigma: Tensor | None = None) -> list[Target]:
    """``(transform, sign, T(y), sigma_T)`` for the transforms valid on ``y`` with a finite,
    varying ``T(y)``; ``sigma_T``: the noise std ``sigma (N,)`` of ``y`` carried through ``T``."""
    out = []
    for transform, sign in transforms_for(y):
        t = transform.forward(y)
        if bool(torch.isfinite(t).all()) and float(t.std()) > 1e-12 * (float(t.abs().mean()) or 1.0):
            out.append((transform, sign, t, propagate_sigma(transform.forward, y, sigma)))
    return out


def _shifted_targets(x: Tensor, y: Tensor, variables: Sequence[str], sigma: Tensor | None = None,
                     shifts: tuple[int, ...] = (1, -1)) -> list[Target]:  # fmt: skip
    """``log|w + s|`` for ``s = ±1`` and ``w`` in ``1/y``, ``y/x_i``, ``x_i/y`` where ``w + s``
    keeps one sign, as transforms whose inverse solves for ``y``: ``y = 1/(±exp(e) - s)``,
    ``x_i·(±exp(e) - s)`` or ``x_i/(±exp(e) - s)`` (the sign is that of ``w + s``). Only the
    inverse is used here: these transforms' ``forward`` maps ``|w + s|``, not ``y``."""
    out: list[Target] = []
    if not bool((y != 0).all()):
        return out
    bases: list[tuple[str, Callable[[Tensor], Tensor], sympy.Expr, int]] = [("1/y", lambda u: 1 / u, sympy.Integer(1), -1)]
    for i, v in enumerate(variables):
        if bool((x[:, i] != 0).all()):
            sym, xi = sympy.Symbol(v, real=True), x[:, i]
            bases += [(f"y/{v}", lambda u, xi=xi: u / xi, sym, 1), (f"{v}/y", lambda u, xi=xi: xi / u, sym, -1)]
    for label, base, scale, power in bases:
        w = base(y)
        for s in shifts:
            sign = 1 if float((w + s).min()) > 0 else -1 if float((w + s).max()) < 0 else 0
            t = torch.log((w + s).abs())
            if sign == 0 or not bool(torch.isfinite(t).all()) or float(t.std()) <= 1e-12 * (float(t.abs().mean()) or 1.0):
                continue
            inverse = (lambda e, _, sg=sign, sh=s, k=scale, p=power: k * (sg * sympy.exp(e) - sh) ** p)  # noqa: E731
            fwd = (lambda u, b=base, sh=s: torch.log((b(u) + sh).abs()))  # noqa: E731
            out.append((Transform(f"log({label}{s:+d})", torch.log, inverse, "nonzero"), 1, t,
                        propagate_sigma(fwd, y, sigma)))  # fmt: skip
    return out


def _trig_rational(x: Tensor, t: Tensor, variables: Sequence[str], kind: str, rtol: float,
                   sigma: Tensor | None = None) -> sympy.Expr | None:  # fmt: skip
    """A rational law of ``t`` in the variables with ``x_i`` replaced by ``cos(x_i)`` or
    ``sin(x_i)`` (``kind`` = ``"cos i"`` / ``"sin i"``): ``x1² + x2² - 2·x1·x2·cos(u)``."""
    name, i = kind.split()[0], int(kind.split()[1])
    z = x.clone()
    z[:, i] = TRIG[name][0](x[:, i])
    inner = rational_fit(z, t, variables, rtol=rtol, max_degree=3, sigma=sigma)
    sym = sympy.Symbol(variables[i], real=True)
    return None if inner is None else inner.xreplace({sym: TRIG[name][1](sym)})


def _trig_pair_rational(x: Tensor, t: Tensor, variables: Sequence[str], kind: str,
                        rtol: float, sigma: Tensor | None = None) -> sympy.Expr | None:
    """A rational law of ``t`` with the pair ``x_i, x_j`` replaced by one variable
    ``cos(x_i·x_j)`` or ``sin(x_i·x_j)`` (``kind`` = ``"cos i j"`` / ``"sin i j"``):
    ``x1·(cos(ω·t) + α·cos²(ω·t))``, ``2·U·(1 - cos(k·d))``."""
    name, i, j = kind.split()[0], int(kind.split()[1]), int(kind.split()[2])
    rest = [k for k in range(x.shape[1]) if k != j]
    z = x[:, rest].clone()
    z[:, rest.index(i)] = TRIG[name][0](x[:, i] * x[:, j])
    names = [variables[k] for k in rest]
    inner = rational_fit(z, t, names, rtol=rtol, max_degree=4, sigma=sigma)
    sym = sympy.Symbol(variables[i], real=True)
    arg = sym * sympy.Symbol(variables[j], real=True)
    return None if inner is None else inner.xreplace({sym: TRIG[name][1](arg)})


def _dropped(transform: Transform, variables: Sequence[str]) -> int | None:
    """The variable ``x_i`` a shifted target ``log|y/x_i + s|`` or ``log|x_i/y + s|`` divides
    out (its law is fitted without that column), ``None`` for ``log|1/y + s|``."""
    label = transform.name[4:-3]
    if label == "1/y":
        return None
    name = label[2:] if label.startswith("y/") else label[:-2]
    return list(variables).index(name)


def _noisy_shifted_rational(x: Tensor, target: Target, variables: Sequence[str], degree: int) -> sympy.Expr | None:
    """A rational law of a shifted target (noisy data only: there the product test, which
    weighs every sample alike, drowns in the noise that ``log|w + s|`` amplifies where
    ``|w + s|`` is small), of total degree ``degree``: ``log(1/y + 1) = h·ω/(2π·k_b·T)``, ``log(y/n_0) = -m·g·x/(k_b·T)``."""
    transform, _, t, sigma = target
    i = _dropped(transform, variables)
    keep = [k for k in range(x.shape[1]) if k != i]
    return rational_fit(x[:, keep], t, [variables[k] for k in keep], min_degree=degree, max_degree=degree,
                        max_terms=NOISY_SHIFTED_TERMS, sigma=sigma)  # fmt: skip


def cheap_candidates(
    x: Tensor, y: Tensor, variables: Sequence[str], *, rtol: float, library: Sequence[str] | None = None,
    seconds: float | None = None, sigma: Tensor | None = None, noise: float | None = None,
) -> Iterator[sympy.Expr]:
    """Candidate formulas of ``y (N,)`` on ``x (N, n)``, each fitting the training data to
    relative RMSE ~``rtol`` in its transformed space. No test starts after ``seconds``
    (default: :data:`CHEAP_SECONDS`, at most :data:`CHEAP_SHARE` of the budget left) or once
    the budget in force has expired.

    ``sigma (N,)``: the noise std of each sample of ``y`` (units of ``y``); by default
    ``noise·std(y)`` with ``noise`` (default: the level in force,
    :func:`physkan.symbolic.simplify.current_noise`, ``[data].noise``), none on clean data. With noise, the rational laws are weighted
    least-squares fits of each ``T(y)`` with ``sigma`` carried through ``T``, accepted by
    their weighted residuals (:func:`.rational.rational_fit`)."""
    x, y = x.double(), y.double().reshape(-1)
    budget = current_budget()
    if seconds is None:
        seconds = min(CHEAP_SECONDS, CHEAP_SHARE * budget.remaining())
    deadline = time.monotonic() + seconds
    noise = current_noise() if noise is None else noise
    if sigma is None and noise > 0:
        sigma = noise * float(y.std()) * torch.ones_like(y)
    targets = _targets(y, sigma)
    # rational laws lowest degree first over all transforms (a high-degree approximant of y
    # must not win over the exact low-degree law of y**2), then the product laws
    # (on noisy data with the rational laws of the shifted targets of each degree)
    shifted = _shifted_targets(x, y, variables, sigma, (1, -1, 0)) if sigma is not None else []
    tests = [(f"rational {d}", t) for d in range(1, (RATIONAL_DEGREE if sigma is None else NOISY_DEGREE) + 1)
             for t in [u for u in targets if u[0].name in RATIONAL_TRANSFORMS]
             + (shifted if d <= NOISY_SHIFTED_DEGREE else [])]  # fmt: skip
    trig = [(f"{fn} {i}", t) for t in targets if t[0].name in TRIG_TRANSFORMS
            for i in range(x.shape[1]) for fn in TRIG]  # fmt: skip
    trig += [(f"{fn} {i} {j}", t) for t in targets if t[0].name in TRIG_TRANSFORMS
             for i in range(x.shape[1]) for j in range(i + 1, x.shape[1]) for fn in TRIG]  # fmt: skip
    tests += trig if sigma is not None else []  # noisy: the (slower) rational tests of trig laws come first
    tests += [("product", t) for t in targets if t[0].name in PRODUCT_TRANSFORMS]
    tests += [("product", t) for t in _shifted_targets(x, y, variables, sigma)]
    tests += [("offset", t) for t in targets if t[0].name in OFFSET_TRANSFORMS]
    tests += [("split", t) for t in targets if t[0].name in OFFSET_TRANSFORMS and x.shape[1] >= 3]
    tests += trig if sigma is None else []
    rat_tol = rtol if rtol > EXACT_RATIONAL else rtol * 1e-3  # exact data: a Pade approximant may come close
    for kind, target in tests:
        transform, sign, t, sig = target
        if budget.check() or time.monotonic() > deadline:
            return
        _log.debug("cheap test %s on %s (%.1f s left)", kind, transform.name, budget.remaining())
        if kind == "split":
            for inner in split_candidates(x, t, variables, rtol=rtol, library=library, deadline=deadline):
                yield transform.inverse(inner, sign or 1)
            continue
        try:
            if kind.startswith("rational") and transform.name.startswith("log("):
                inner = _noisy_shifted_rational(x, target, variables, int(kind.split()[1]))
            elif kind.startswith("rational"):
                d = int(kind.split()[1])
                inner = rational_fit(x, t, variables, rtol=rat_tol, min_degree=d, max_degree=d, sigma=sig)
            elif kind.split()[0] in TRIG and len(kind.split()) == 3:
                inner = _trig_pair_rational(x, t, variables, kind, rat_tol, sig)
            elif kind.split()[0] in TRIG:
                inner = _trig_rational(x, t, variables, kind, rat_tol, sig)
            else:
                inner = product_formula(x, t, variables, library, exact_rel=rtol, offset=kind == "offset")
        except (ValueError, RuntimeError, ZeroDivisionError, OverflowError):
            continue
        if inner is not None:
            yield transform.inverse(inner, sign or 1)
