"""Hypothesis tests for symmetries (KAN 2.0, Sec. 4.2.2), by variable *names*.

* :func:`test_symmetry` with ``combination="x0 + x1"``: does ``f`` depend on the variables
  only through that combination? Then ``f`` is constant on the level sets of ``c``, i.e. the
  gradient of ``f`` over the variables is parallel to that of ``c`` on every sample (tested
  with autograd, float64). ``f = x0*x1`` passes ``"x0*x1"`` and fails ``"x0 + x1"``.
* :func:`test_symmetry` without ``combination``: the *generalized* symmetry ``f =
  g(h(x_V), x_rest)`` for some ``h`` (the direction of ``grad_V f`` does not depend on the
  other inputs). It needs other *used* inputs: for ``V`` holding every input ``f`` uses it is
  trivially true, so a ``ValueError`` says so instead of a meaningless ``True``.
* :func:`find_symmetries`: every such group among the used inputs (unused inputs, with
  attribution ~0, never make a group).

``variables`` are names (``f.variables``, or ``names=``, default ``x0..x{n-1}``); integer
indices still work for one release, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence

from torch import Tensor, nn

from physkan.interpret.modularity import (
    Func,
    as_function,
    gradient,
    input_attribution,
    symmetry_score,
    variable_labels,
)

__all__ = ["UNUSED_THRESHOLD", "combination_score", "find_symmetries", "resolve_variables",
           "test_symmetry", "used_inputs"]  # fmt: skip

#: An input whose attribution (:func:`~physkan.interpret.modularity.input_attribution`) is
#: below this is unused.
UNUSED_THRESHOLD = 1e-3


def resolve_variables(variables: Sequence[str | int] | None, labels: Sequence[str]) -> list[int]:
    """Column indices of ``variables`` (names; ``None``: all). Integer indices are accepted
    with a ``DeprecationWarning``. Raises ``ValueError`` naming an unknown variable."""
    if variables is None:
        return list(range(len(labels)))
    if isinstance(variables, str):
        variables = [variables]
    out: list[int] = []
    warned = False
    for v in variables:
        if isinstance(v, int) and not isinstance(v, bool):
            if not warned:
                warnings.warn("variables: pass names (e.g. ['x0', 'x1']), not indices; indices "
                              "are deprecated", DeprecationWarning, stacklevel=3)  # fmt: skip
                warned = True
            if not 0 <= int(v) < len(labels):
                raise ValueError(f"variables: index {v} out of range for {len(labels)} inputs")
            out.append(int(v))
        elif str(v) in labels:
            out.append(list(labels).index(str(v)))
        else:
            raise ValueError(f"variables: unknown variable {v!r}; known: {list(labels)}")
    return out


def used_inputs(f: Func | nn.Module, x: Tensor, threshold: float = UNUSED_THRESHOLD) -> list[int]:
    """Indices of the inputs ``f`` uses (attribution above ``threshold``); ``x``: ``(N, n)``."""
    score = input_attribution(f, x)
    return [a for a, s in enumerate(score.tolist()) if s > threshold]


def combination_score(f: Func | nn.Module, x: Tensor, idx: Sequence[int], combination: Func) -> float:
    """Median over samples of ``|grad_V f - proj_{grad_V c} grad_V f| / |grad_V f|`` (0 when
    ``f`` depends on ``x_V`` only through ``c``); samples where either gradient vanishes are
    skipped. ``x``: ``(N, n)``; ``combination``: ``(N, n) -> (N,)``."""
    fn = as_function(f)
    x = x.detach().double()
    gf = gradient(fn, x)[:, list(idx)]
    gc = gradient(combination, x)[:, list(idx)]
    nf, nc = gf.norm(dim=1), gc.norm(dim=1)
    ok = (nf > 1e-9 * nf.max().clamp_min(1e-300)) & (nc > 1e-12)
    if not bool(ok.any()):
        return 0.0  # f does not depend on these variables at all
    gf, gc, nf, nc = gf[ok], gc[ok], nf[ok], nc[ok]
    u = gc / nc[:, None]
    resid = gf - (gf * u).sum(1, keepdim=True) * u
    return float((resid.norm(dim=1) / nf).median())


def test_symmetry(
    f: Func | nn.Module,
    x: Tensor,
    variables: Sequence[str | int],
    combination: str | None = None,
    threshold: float = 1e-2,
    names: Sequence[str] | None = None,
) -> bool:
    """Does ``f`` depend on ``variables`` only through ``combination`` (or, without one,
    through *some* function of them)?

    Args:
        f: a module or function ``(N, n) -> (N,)`` / ``(N, 1)``.
        x: samples ``(N, n)``.
        variables: names of the variables tested, e.g. ``["x0", "x1"]``.
        combination: a formula over those names, e.g. ``"x0 + x1"``, ``"x0*x1"``,
            ``"x0**2 + x1**2"``; see :func:`combination_score`.
        threshold: largest median violation accepted (dimensionless).
        names: the variables' names (default ``f.variables`` or ``x0..x{n-1}``).

    Raises:
        ValueError: an unknown variable, a combination using other variables, or (without a
            combination) no other used input, where the test would be trivially true.

    Example: ``test_symmetry(f, x, ["x0", "x1"], combination="x0*x1")`` for ``f = x0*x1 +
    sin(x2)`` is True; with ``combination="x0 + x1"`` it is False.
    """
    labels = variable_labels(names, f, x.shape[1])
    idx = resolve_variables(variables, labels)
    if combination is None:
        rest = [a for a in used_inputs(f, x) if a not in idx]
        if not rest:
            raise ValueError(
                f"variables: {[labels[a] for a in idx]} hold every input f uses, so a "
                "generalized symmetry is trivially true; pass combination=... to test one")
        return symmetry_score(f, x, idx) <= threshold
    from physkan.symbolic.parse import lambdify_torch, parse_expression

    expr = parse_expression(combination, labels)
    extra = sorted(s.name for s in expr.free_symbols if s.name not in {labels[a] for a in idx})
    if extra:
        raise ValueError(f"combination: {combination!r} uses {extra}, not among variables")
    return combination_score(f, x, idx, lambdify_torch(expr, labels)) <= threshold


def find_symmetries(
    f: Func | nn.Module,
    x: Tensor,
    threshold: float = 1e-2,
    variables: Sequence[str | int] | None = None,
    names: Sequence[str] | None = None,
) -> list[list[int]]:
    """Groups (input indices) with a generalized symmetry ``f = g(h(x_group), x_rest)``,
    smallest first: proper subsets of size ``2..m-1`` of the ``m`` *used* inputs among
    ``variables`` (names; default all). ``x``: samples ``(N, n)``."""
    labels = variable_labels(names, f, x.shape[1])
    fn = as_function(f)
    used = set(used_inputs(fn, x))
    pool = [a for a in resolve_variables(variables, labels) if a in used]
    found = []
    for k in range(2, len(pool)):
        for group in itertools.combinations(pool, k):
            if symmetry_score(fn, x, group) <= threshold:
                found.append(list(group))
    return found


test_symmetry.__test__ = False  # type: ignore[attr-defined]  # a library function, not a test
