"""Functional modularity tests (KAN 2.0, Sec. 4.2.2), Hessian based.

All tests take any differentiable ``f: (N, n) -> (N,)`` or ``(N, 1)`` (a trained
:class:`MultKAN`, an MLP, or a plain torch function) and samples ``x (N, n)``; derivatives
come from ``torch.autograd.grad(..., create_graph=True)`` over the batch (the samples are
independent, so the gradient of the sum is the per-sample gradient). Modules are evaluated
on a float64 copy. Scores are medians over the samples (robust to the odd bad point) of
derivatives scaled by the standard deviations of the variables involved:

* additive separability ``f = g(y) + h(z)``: ``H_ab = d2f/dx_a dx_b = 0`` across groups;
  the score matrix ``S_ab = median|H_ab| std_a std_b / std(f)`` (dimensionless);
* multiplicative separability: the same on ``log|f|`` (samples with ``|f|`` tiny dropped);
* general separability ``f = F(g(y) + h(z))``: ``log|f_a / f_b|`` (``a`` in ``y``, ``b`` in
  ``z``) is additively separable, i.e. ``d2 log|f_a| / dx_c dx_d`` does not depend on ``a``
  for ``c``, ``d`` in different groups;
* generalized symmetry ``f = g(h(y), z)``: the direction of ``grad_y f`` does not depend on
  ``z``;
* unused inputs: ``median|df/dx_a| std_a / std(f)`` (:func:`input_attribution`) is ~0;
* pair symmetries (AI Feynman): ``f`` depends on ``x_i, x_j`` only through ``x_i - x_j``
  (``f_i + f_j = 0``), ``x_i + x_j`` (``f_i - f_j = 0``), ``x_i x_j`` (``x_i f_i - x_j f_j =
  0``) or ``x_i / x_j`` (``x_i f_i + x_j f_j = 0``), see :func:`pair_symmetry_scores`.

Groups are the connected components of the "interacting" graph ``S_ab > threshold``.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = [
    "SeparabilityResult",
    "as_function",
    "general_separability",
    "PAIR_KINDS",
    "gradient",
    "hessian",
    "input_attribution",
    "pair_symmetry_scores",
    "interaction_matrix",
    "separability",
    "symmetry_score",
    "test_general_separability",
    "test_separability",
    "variable_labels",
]


def __getattr__(name: str) -> object:
    """``find_symmetries`` and ``test_symmetry`` live in :mod:`physkan.interpret.symmetry`
    (by variable names, with ``combination=``); kept importable from here."""
    if name in ("find_symmetries", "test_symmetry"):
        from physkan.interpret import symmetry

        return getattr(symmetry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

Func = Callable[[Tensor], Tensor]


@dataclass
class SeparabilityResult:
    """Result of a separability search.

    Attributes:
        mode: ``"add"``, ``"mul"`` or ``"general"``.
        groups: variable indices per group (the finest partition found).
        names: the same with variable names.
        score: the ``(n, n)`` interaction scores the groups were read from.
        separable: more than one group.
    """

    mode: str
    groups: list[list[int]]
    names: list[list[str]]
    score: Tensor
    separable: bool

    def __str__(self) -> str:
        sep = {"add": " + ", "mul": " * ", "general": " (+) "}[self.mode]
        return sep.join("{" + ", ".join(g) + "}" for g in self.names)


def as_function(f: Func | nn.Module, out: int = 0) -> Func:
    """A float64, scalar-output version of ``f``: ``(N, n) -> (N,)``."""
    if isinstance(f, nn.Module):
        f = (f.copy() if hasattr(f, "copy") else copy.deepcopy(f)).double().eval()
        for p in f.parameters():
            p.requires_grad_(False)

    def g(x: Tensor) -> Tensor:
        y = f(x)
        return y[:, out] if y.dim() == 2 else y

    return g


def gradient(f: Func, x: Tensor, create_graph: bool = False) -> Tensor:
    """Per-sample gradient ``(N, n)`` of a scalar-output ``f``."""
    if not x.requires_grad:
        x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x).sum(), x, create_graph=True)
    return g if create_graph else g.detach()


def hessian(f: Func, x: Tensor) -> Tensor:
    """Per-sample Hessian ``(N, n, n)`` of a scalar-output ``f``."""
    x = x.detach().double().requires_grad_(True)
    g = gradient(f, x, create_graph=True)
    rows = [torch.autograd.grad(g[:, a].sum(), x, retain_graph=True)[0] for a in range(x.shape[1])]
    return torch.stack(rows, dim=1).detach()


def _log_abs(f: Func, x: Tensor, floor: float = 0.05) -> tuple[Func, Tensor]:
    """``log|f|`` and the samples where ``|f|`` exceeds ``floor`` times its median."""
    with torch.no_grad():
        v = f(x.double()).abs()
    keep = v > floor * v.median()
    return (lambda z: torch.log(f(z).abs() + 1e-300)), x[keep]


def interaction_matrix(f: Func | nn.Module, x: Tensor, mode: str = "add") -> Tensor:
    """Scores ``S (n, n)``: ``median|H_ab| std_a std_b / std(f)`` of ``f`` (``"add"``) or of
    ``log|f|`` (``"mul"``)."""
    fn = as_function(f)
    x = x.detach().double()
    if mode == "mul":
        fn, x = _log_abs(fn, x)
    elif mode != "add":
        raise ValueError(f"mode must be 'add' or 'mul', got {mode!r}")
    h = hessian(fn, x)
    std = x.std(0)
    with torch.no_grad():
        scale = fn(x).std().clamp_min(1e-12)
    return h.abs().median(0).values * std[:, None] * std[None, :] / scale


def _components(adj: Tensor, variables: Sequence[int] | None = None) -> list[list[int]]:
    """Connected components of the graph ``adj (n, n)`` restricted to ``variables``."""
    pool = list(range(adj.shape[0])) if variables is None else list(variables)
    seen: set[int] = set()
    groups: list[list[int]] = []
    for start in pool:
        if start in seen:
            continue
        stack, comp = [start], []
        seen.add(start)
        while stack:
            a = stack.pop()
            comp.append(a)
            for b in pool:
                if b not in seen and bool(adj[a, b]):
                    seen.add(b)
                    stack.append(b)
        groups.append(sorted(comp))
    return groups


def variable_labels(names: Sequence[str] | None, f: object, n: int) -> list[str]:
    """Names of the ``n`` inputs: ``names``, else ``f.variables``, else ``x0..x{n-1}``."""
    if names is not None:
        return list(names)
    return list(getattr(f, "variables", [f"x{i}" for i in range(n)]))


_names = variable_labels


def _pool(variables: Sequence[str | int] | None, labels: Sequence[str]) -> list[int] | None:
    if variables is None:
        return None
    from physkan.interpret.symmetry import resolve_variables

    return resolve_variables(variables, labels)


def separability(
    f: Func | nn.Module,
    x: Tensor,
    mode: str = "add",
    threshold: float = 1e-2,
    names: Sequence[str] | None = None,
    variables: Sequence[str | int] | None = None,
) -> SeparabilityResult:
    """Finest additive (``mode="add"``) or multiplicative (``"mul"``) variable grouping.

    ``x``: samples ``(N, n)``. Variables ``a``, ``b`` interact when ``S_ab > threshold``.
    ``variables``: names of the variables to group (default all; indices deprecated).
    """
    score = interaction_matrix(f, x, mode)
    labels = _names(names, f, x.shape[1])
    groups = _components(score > threshold, _pool(variables, labels))
    return SeparabilityResult(mode, groups, [[labels[i] for i in g] for g in groups], score,
                              len(groups) > 1)


def test_separability(
    f: Func | nn.Module, x: Tensor, groups: Sequence[Sequence[int]], mode: str = "add",
    threshold: float = 1e-2,
) -> bool:
    """Whether ``f`` is ``mode``-separable along ``groups`` (missing variables: one more group)."""
    score = interaction_matrix(f, x, mode)
    label = _labels(groups, x.shape[1])
    cross = label[:, None] != label[None, :]
    return bool((score[cross] <= threshold).all())


def _labels(groups: Sequence[Sequence[int]], n: int) -> Tensor:
    label = torch.full((n,), len(groups), dtype=torch.long)
    for k, g in enumerate(groups):
        label[list(g)] = k
    return label


def _log_grad_derivatives(
    f: Func | nn.Module, x: Tensor, variables: Sequence[int] | None = None
) -> tuple[Tensor, Tensor, Tensor, list[int]]:
    """Derivatives of ``L_a = log|df/dx_a|`` for the variables ``a`` (of ``variables``) on
    which ``f`` depends: ``D (N', m, n)`` first and ``T (N', m, n, n)`` second derivatives,
    the samples ``(N', n)`` used (no tiny ``f_a``) and the ``m`` variables ``a``."""
    fn = as_function(f)
    x = x.detach().double()
    pool = list(range(x.shape[1])) if variables is None else list(variables)
    g = gradient(fn, x)[:, pool].abs()
    med = g.median(0).values
    keep = [k for k, m in enumerate(med.tolist()) if m > 1e-8 * float(med.max())]
    active = [pool[k] for k in keep]
    ok = (g[:, keep] > 0.05 * med[keep]).all(1)
    x = x[ok]
    ds, ts = [], []
    for a in active:
        def log_ga(z: Tensor, a: int = a) -> Tensor:
            return torch.log(gradient(fn, z, create_graph=True)[:, a].abs() + 1e-300)

        ds.append(gradient(log_ga, x))
        ts.append(hessian(log_ga, x))
    n = x.shape[1]
    if not active:
        return x.new_zeros(len(x), 0, n), x.new_zeros(len(x), 0, n, n), x, active
    return torch.stack(ds, 1), torch.stack(ts, 1), x, active


def _bipartition_score(
    d: Tensor, t: Tensor, std: Tensor, active: list[int], ys: set[int], zs: set[int]
) -> float:
    """Violation of ``f = F(g(y) + h(z))``: ratios ``f_a/f_a'`` inside a side must not depend
    on the other side, and ``log|f_a/f_b|`` across sides must be additively separable."""
    worst = 0.0
    med = lambda v: float(v.abs().median(0).values.max()) if v.numel() else 0.0  # noqa: E731
    for side, other in ((ys, zs), (zs, ys)):
        ks = [k for k, a in enumerate(active) if a in side]
        cs = sorted(other)
        for k1, k2 in itertools.combinations(ks, 2):
            worst = max(worst, med((d[:, k1, cs] - d[:, k2, cs]) * std[cs]))
    ka = [k for k, a in enumerate(active) if a in ys]
    kb = [k for k, a in enumerate(active) if a in zs]
    cy, cz = sorted(ys), sorted(zs)
    scale = std[cy][:, None] * std[cz][None, :]
    for k1, k2 in itertools.product(ka, kb):
        diff = (t[:, k1][:, cy][:, :, cz] - t[:, k2][:, cy][:, :, cz]) * scale
        worst = max(worst, med(diff.reshape(len(diff), -1)))
    return worst


def general_separability(
    f: Func | nn.Module, x: Tensor, threshold: float = 1e-2, names: Sequence[str] | None = None,
    variables: Sequence[str | int] | None = None,
) -> SeparabilityResult:
    """Finest grouping with ``f = F(g1(y1) + g2(y2) + ...)`` (generalized separability).

    Every bipartition ``(y, z)`` of ``variables`` (default all; at most 10) is tested with
    :func:`test_general_separability`'s criterion; the groups are the common refinement of
    the bipartitions that pass. ``score[a, b]`` is the smallest violation over bipartitions
    separating ``a`` and ``b``. ``x``: samples ``(N, n)``.
    """
    labels = _names(names, f, x.shape[1])
    pool = _pool(variables, labels) or list(range(x.shape[1]))
    if len(pool) > 10:
        raise ValueError(f"general_separability: at most 10 variables, got {len(pool)}")
    d, t, xs, active = _log_grad_derivatives(f, x, pool)
    std = xs.std(0)
    n = x.shape[1]
    score = torch.zeros(n, n, dtype=torch.float64)
    for a, b in itertools.combinations(pool, 2):
        score[a, b] = score[b, a] = float("inf")
    for mask in range(1, 2 ** (len(pool) - 1)):
        ys = {v for i, v in enumerate(pool) if mask >> i & 1}
        zs = set(pool) - ys
        viol = _bipartition_score(d, t, std, active, ys, zs) if len(xs) > 2 else 0.0
        for a, b in itertools.product(ys, zs):
            score[a, b] = score[b, a] = min(float(score[a, b]), viol)
    groups = _components(score > threshold, pool)
    return SeparabilityResult("general", groups, [[labels[i] for i in g] for g in groups],
                              score, len(groups) > 1)


def test_general_separability(
    f: Func | nn.Module, x: Tensor, groups: Sequence[Sequence[int]], threshold: float = 1e-2,
) -> bool:
    """Whether ``f = F(g(groups[0]) + h(rest))`` for a bipartition ``groups = [y, z]``
    (``z`` defaults to the other variables); ``x``: samples ``(N, n)``."""
    ys = set(groups[0])
    zs = set(groups[1]) if len(groups) > 1 else set(range(x.shape[1])) - ys
    d, t, xs, active = _log_grad_derivatives(f, x, sorted(ys | zs))
    return _bipartition_score(d, t, xs.std(0), active, ys, zs) <= threshold


def symmetry_score(f: Func | nn.Module, x: Tensor, group: Sequence[int]) -> float:
    """``median |d(grad_y f / |grad_y f|) / dz| std_z`` (max over entries), ``y = group``.

    Zero for a generalized symmetry ``f = g(h(y), z)``.
    """
    fn = as_function(f)
    n = x.shape[1]
    ys = list(group)
    zs = [i for i in range(n) if i not in set(ys)]
    if not zs or len(ys) < 1:
        return 0.0
    x = x.detach().double().requires_grad_(True)
    gy = gradient(fn, x, create_graph=True)[:, ys]
    u = gy / gy.norm(dim=1, keepdim=True).clamp_min(1e-12)  # (N, k)
    rows = [torch.autograd.grad(u[:, c].sum(), x, retain_graph=True)[0][:, zs]
            for c in range(len(ys))]
    dev = torch.stack(rows, dim=1).abs() * x.detach().std(0)[zs]  # (N, k, n-k)
    return float(dev.amax((1, 2)).median())


def input_attribution(f: Func | nn.Module, x: Tensor) -> Tensor:
    """Scores ``(n,)``: ``median|df/dx_a| std_a / std(f)`` (dimensionless; ~0 for an unused
    input). ``x``: samples ``(N, n)``."""
    fn = as_function(f)
    x = x.detach().double()
    g = gradient(fn, x)
    with torch.no_grad():
        scale = fn(x).std().clamp_min(1e-300)
    return g.abs().median(0).values * x.std(0) / scale


#: Pair symmetries: name -> (weight of ``f_i``, weight of ``f_j``) as functions of ``x_i, x_j``;
#: the symmetry holds when ``w_i f_i + w_j f_j = 0`` on every sample.
PAIR_KINDS: dict[str, Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]] = {
    "diff": lambda a, b: (torch.ones_like(a), torch.ones_like(b)),
    "sum": lambda a, b: (torch.ones_like(a), -torch.ones_like(b)),
    "prod": lambda a, b: (a, -b),
    "ratio": lambda a, b: (a, b),
}


def pair_symmetry_scores(
    f: Func | nn.Module, x: Tensor, pairs: Sequence[tuple[int, int]] | None = None,
    kinds: Sequence[str] = tuple(PAIR_KINDS),
) -> dict[tuple[int, int, str], float]:
    """Violation of each pair symmetry: ``median|w_i f_i + w_j f_j| / median(|w_i f_i| +
    |w_j f_j|)`` (0 when ``f`` depends on the pair only through the kind's combination, about
    1 when not). ``pairs``: default all ``i < j``; ``kinds``: keys of :data:`PAIR_KINDS`
    (``prod``/``ratio`` skip pairs whose samples touch 0). ``x``: samples ``(N, n)``."""
    fn = as_function(f)
    x = x.detach().double()
    g = gradient(fn, x)
    pool = list(itertools.combinations(range(x.shape[1]), 2)) if pairs is None else list(pairs)
    out: dict[tuple[int, int, str], float] = {}
    for i, j in pool:
        for kind in kinds:
            if kind not in PAIR_KINDS:
                raise ValueError(f"kinds: unknown pair symmetry {kind!r}; known: {sorted(PAIR_KINDS)}")
            if kind in ("prod", "ratio") and bool(((x[:, i] == 0) | (x[:, j] == 0)).any()):
                continue
            wi, wj = PAIR_KINDS[kind](x[:, i], x[:, j])
            a, b = wi * g[:, i], wj * g[:, j]
            den = float((a.abs() + b.abs()).median())
            out[(i, j, kind)] = float((a + b).abs().median()) / den if den > 0 else float("inf")
    return out


# These are library functions, not pytest tests (they may be imported into test modules).
for _fn in (test_separability, test_general_separability):
    _fn.__test__ = False  # type: ignore[attr-defined]
