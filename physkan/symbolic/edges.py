"""Making KAN edges symbolic: suggest, fix, unfix and auto-symbolic on a trained network.

An edge ``(l, i, j)`` connects node ``i`` of layer ``l`` to subnode ``j`` of layer ``l+1``.
Fixing it to ``f`` fits ``y ≈ c·f(a·x + b) + d`` to its current pre-/post-activations on
samples ``x`` and switches the edge to its symbolic branch. Every function that takes data
takes it second: ``fix_symbolic(model, x, l, i, j, name)``, ``suggest_edge(model, x, l, i,
j)``, ``auto_symbolic(model, x)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from physkan.budget import budget_scope, current_budget
from physkan.kan.network import MultKAN
from physkan.symbolic.fit import AffineFit, Candidate, affine_fit, suggest_symbolic
from physkan.symbolic.library import (
    PHYSICS_LIBRARY,
    SymbolicFunction,
    get_symbolic,
    resolve_library,
)
from physkan.symbolic.refit import refit_symbolic

__all__ = [
    "ENGINE_AUTO_SYMBOLIC",
    "AutoSymbolicReport",
    "EdgeChoice",
    "auto_symbolic",
    "choose_candidate",
    "edge_samples",
    "fix_symbolic",
    "suggest_edge",
    "unfix_symbolic",
]

Library = Mapping[str, SymbolicFunction] | Sequence[str] | None


def _check_edge(model: MultKAN, l: int, i: int, j: int) -> None:
    if not 0 <= l < model.depth:
        raise ValueError(f"l: layer index must be in [0, {model.depth - 1}], got {l}")
    layer = model.layers[l]
    if not 0 <= i < layer.in_dim:
        raise ValueError(f"i: input node index must be in [0, {layer.in_dim - 1}], got {i}")
    if not 0 <= j < layer.out_dim:
        raise ValueError(f"j: output subnode index must be in [0, {layer.out_dim - 1}], got {j}")


@torch.no_grad()
def edge_samples(model: MultKAN, x: Tensor, l: int, i: int, j: int) -> tuple[Tensor, Tensor]:
    """Pre- and post-activations ``(N,), (N,)`` of edge ``(l, i, j)`` on samples ``x``."""
    _check_edge(model, l, i, j)
    _, acts = model.forward_with_activations(x)
    return acts.inputs[l][:, i], acts.edges[l][:, i, j]


def suggest_edge(
    model: MultKAN,
    x: Tensor,
    l: int,
    i: int,
    j: int,
    library: Library = None,
    *,
    weight_simple: float = 0.8,
    topk: int = 5,
) -> list[Candidate]:
    """Ranked symbolic candidates for edge ``(l, i, j)``, best first."""
    pre, post = edge_samples(model, x, l, i, j)
    return suggest_symbolic(pre, post, library, weight_simple=weight_simple, topk=topk)


@torch.no_grad()
def _set_symbolic(model: MultKAN, l: int, i: int, j: int, fit: AffineFit) -> None:
    layer = model.layers[l]
    get_symbolic(fit.name)  # raises a clear error for unknown names
    layer.symbolic_names[i][j] = fit.name
    layer.symbolic_affine[i, j] = torch.tensor([fit.a, fit.b, fit.c, fit.d]).to(layer.symbolic_affine)
    layer.symbolic_mask[i, j] = 1.0


def fix_symbolic(
    model: MultKAN,
    x: Tensor | None,
    l: int,
    i: int,
    j: int,
    name: str | None = None,
    *,
    fit_params: bool = True,
) -> AffineFit:
    """``fix_symbolic(model, x, l, i, j, name)``: make edge ``(l, i, j)`` the function ``name``.

    Args:
        x: samples ``(N, n_in)``, or ``None``. With samples and ``fit_params``, (a, b, c, d)
            are fitted to the edge's current activations; otherwise the edge becomes exactly
            ``name(x)`` (a=1, b=0, c=1, d=0).
        l, i, j: the edge (layer, input node, output subnode).
        name: a library function name or alias (or a composite such as ``"sqrt(1 - x**2)"``).

    The pre-0.x order ``fix_symbolic(model, l, i, j, name, x)`` still works for one
    release, with a ``DeprecationWarning`` (an ``int`` in second place gives it away).

    Raises:
        UnknownSymbolicError: for a name not in the symbolic library.
        ValueError: for an edge index out of range.
    """
    if isinstance(x, int) and not isinstance(x, bool):  # the old order: (model, l, i, j, name, x)
        warnings.warn(
            "fix_symbolic(model, l, i, j, name, x) is deprecated; use fix_symbolic(model, x, l, "
            "i, j, name) (data second, as in every interpret/symbolic function)",
            DeprecationWarning, stacklevel=2,
        )  # fmt: skip
        x, l, i, j, name = name, x, l, i, j  # type: ignore[assignment]
    if not isinstance(name, str):
        raise TypeError(f"fix_symbolic(model, x, l, i, j, name): name must be a string, got {name!r}")
    _check_edge(model, l, i, j)
    fn = get_symbolic(name)
    if x is not None and fit_params:
        pre, post = edge_samples(model, x, l, i, j)
        fit = affine_fit(pre, post, fn)
    else:
        fit = AffineFit(1.0, 0.0, 1.0, 0.0, float("nan"), fn.name)
    if fit.name != fn.name:
        fit = AffineFit(fit.a, fit.b, fit.c, fit.d, fit.r2, fn.name)
    _set_symbolic(model, l, i, j, fit)
    return fit


@torch.no_grad()
def unfix_symbolic(model: MultKAN, l: int, i: int, j: int) -> None:
    """Return edge ``(l, i, j)`` to its numeric (spline) branch."""
    _check_edge(model, l, i, j)
    model.layers[l].symbolic_mask[i, j] = 0.0


@dataclass(frozen=True)
class EdgeChoice:
    """What auto-symbolic did with one edge."""

    layer: int
    i: int
    j: int
    name: str
    r2: float
    fixed: bool


@dataclass
class AutoSymbolicReport:
    """Edges made symbolic and edges left as splines (with their best candidate)."""

    fixed: list[EdgeChoice] = field(default_factory=list)
    kept_numeric: list[EdgeChoice] = field(default_factory=list)
    #: RMSE of the network on ``(x, y)`` before / after the refit (NaN without one).
    rmse_before_refit: float = float("nan")
    rmse: float = float("nan")

    @property
    def complete(self) -> bool:
        """True when every active edge is symbolic."""
        return not self.kept_numeric

    def summary(self) -> str:
        lines = [f"({c.layer},{c.i},{c.j}) -> {c.name} (r2={c.r2:.6f})" for c in self.fixed]
        lines += [
            f"({c.layer},{c.i},{c.j}) stays a spline (best {c.name}, r2={c.r2:.4f})"
            for c in self.kept_numeric
        ]
        return "\n".join(lines)


def _degenerate(candidate: Candidate, pre: Tensor, lib: Mapping[str, SymbolicFunction]) -> bool:
    """Whether a fit only uses its function as a Taylor polynomial (a disguised x or x^2).

    ``c·cos(0.1·x) + d`` with a huge ``c`` and ``d ≈ -c`` mimics a parabola. We call a fit
    degenerate when ``f(a·x + b)`` varies by less than 1% of its magnitude over the samples.
    Linear and zero functions are never degenerate.
    """
    if candidate.name in ("x", "0") or candidate.fit.c == 0:
        return False
    fn = lib.get(candidate.name) or get_symbolic(candidate.name)
    values = fn.torch_fn(candidate.fit.a * pre.double() + candidate.fit.b)
    scale = values.abs().max()
    return bool(scale > 0 and (values.max() - values.min()) < 1e-2 * scale)


def choose_candidate(
    ranked: Sequence[Candidate], order: Mapping[str, int], *, r2_tolerance: float | None = None
) -> Candidate:
    """The simplest candidate whose r² is within tolerance of the best one.

    ``ranked``: non-empty candidates of one edge. Within ``best_r2 - tol`` (``tol`` default
    ``max(1e-4, 1 - best_r2)``: up to twice the best unexplained variance), the lowest
    complexity wins, then the earlier position in ``order`` (the library's physics prior:
    ``sin`` before ``sqrt``), then the higher r².
    """
    best_r2 = max(c.fit.r2 for c in ranked)
    tol = max(1e-4, 1.0 - best_r2) if r2_tolerance is None else r2_tolerance
    close = [c for c in ranked if c.fit.r2 >= best_r2 - tol]
    return min(close, key=lambda c: (get_symbolic(c.name).complexity,
                                     order.get(c.name, len(order)), -c.fit.r2))  # fmt: skip


def _edge_candidates(
    pre: Tensor, post: Tensor, lib: Mapping[str, SymbolicFunction], r2_threshold: float,
    weight_simple: float, grid_number: int, early: float | None,
) -> tuple[list[Candidate], list[Candidate]]:
    """All fitted candidates of one edge (best score first) and the good ones (``r2 >=
    r2_threshold``, not degenerate).

    With ``early`` (the "simplest" selection), functions are fitted by increasing complexity
    and the search stops after the first complexity level holding a good candidate with
    ``r2 >= 1 - early``: such a candidate is within tolerance of any better fit, so no more
    complex function can be chosen (a linear edge costs one fit, not the whole library).
    """
    levels: dict[int, dict[str, SymbolicFunction]] = {}
    if early is None:
        levels[0] = dict(lib)
    else:
        for name, fn in lib.items():
            levels.setdefault(fn.complexity, {})[name] = fn
    ranked: list[Candidate] = []
    good: list[Candidate] = []
    for level in sorted(levels):
        found = suggest_symbolic(pre, post, levels[level], weight_simple=weight_simple, topk=0,
                                 grid_number=grid_number)  # fmt: skip
        ranked += found
        good += [c for c in found if c.fit.r2 >= r2_threshold and not _degenerate(c, pre, lib)]
        if early is not None and any(c.fit.r2 >= 1 - early for c in good):
            break
    ranked.sort(key=lambda c: -c.score)
    return ranked, good


def _composite_choice(pre: Tensor, post: Tensor, lib: Mapping[str, SymbolicFunction],
                      good: list[Candidate], r2_threshold: float, weight_simple: float,
                      seconds: float) -> AffineFit | None:
    """A composite ``f(alpha h(x) + beta)`` fit within ``seconds`` (of the current budget),
    when it beats the best single function's score."""
    from physkan.symbolic.composite import fit_composition

    floor = max((c.score for c in good), default=None)  # a composite must beat the best single
    with budget_scope(current_budget().child(seconds=seconds)):
        comp = fit_composition(pre, post, lib, r2_threshold=r2_threshold, weight_simple=weight_simple,
                               min_score=floor)  # fmt: skip
    if comp is None or (floor is not None and comp.score <= floor):
        return None  # the single function is the shorter description
    return AffineFit(1.0, 0.0, comp.c, comp.d, comp.r2, comp.name)


def auto_symbolic(
    model: MultKAN,
    x: Tensor,
    library: Library = None,
    *,
    y: Tensor | None = None,
    r2_threshold: float = 0.99,
    weight_simple: float = 0.8,
    selection: str = "simplest",
    r2_tolerance: float | None = None,
    compositions: bool = False,
    composition_seconds: float = 5.0,
    refit: bool = True,
    grid_number: int = 41,
) -> AutoSymbolicReport:
    """Fix every active numeric edge to a library function, then refit the constants.

    Args:
        x: samples ``(N, n_in)``.
        library: names or ``{name: function}`` (default :data:`PHYSICS_LIBRARY`: the common
            physics functions, in prior order).
        y: targets ``(N, n_out)`` of the refit (default: the network's output before fixing).
            Pass the training targets for exact constants.
        r2_threshold: an edge whose best fit has a lower r² stays a spline (``kept_numeric``).
        selection: ``"simplest"``: :func:`choose_candidate` (the simplest function within
            tolerance of the best r², so ``sin`` beats ``sqrt`` when both fit); ``"score"``:
            pykan's complexity-penalised score (:func:`~physkan.symbolic.fit.score_candidate`).
        r2_tolerance: see :func:`choose_candidate`.
        compositions: also try ``f(alpha h(x) + beta)`` of two library functions on an edge no
            single function fits to ``r2 > 1 - 1e-6``, for at most ``composition_seconds``
            per edge (off by default: it is slow).
        refit: after fixing, :func:`~physkan.symbolic.refit.refit_symbolic` polishes all the
            symbolic parameters together on ``(x, y)``.
        grid_number: grid of the per-function ``(a, b)`` search
            (:func:`~physkan.symbolic.fit.suggest_symbolic`).

    Time budget: the fits and the refit stop early once
    :func:`physkan.budget.current_budget` expires (edges not reached stay splines).
    """
    if selection not in ("simplest", "score"):
        raise ValueError(f"selection: must be 'simplest' or 'score', got {selection!r}")
    lib = resolve_library(PHYSICS_LIBRARY if library is None else library) \
        if not isinstance(library, Mapping) else dict(library)  # fmt: skip
    order = {name: k for k, name in enumerate(lib)}
    early = 1e-4 if r2_tolerance is None else r2_tolerance
    report = AutoSymbolicReport()
    with torch.no_grad():
        out, acts = model.forward_with_activations(x)
    target = out.detach() if y is None else y
    budget = current_budget()
    for l, layer in enumerate(model.layers):
        alive = (layer.mask * (1 - layer.symbolic_mask)).nonzero().tolist()
        for i, j in alive:
            pre, post = acts.inputs[l][:, i], acts.edges[l][:, i, j]
            if budget.check():
                report.kept_numeric.append(EdgeChoice(l, i, j, "-", 0.0, False))
                continue
            ranked, good = _edge_candidates(pre, post, lib, r2_threshold, weight_simple,
                                            grid_number, early if selection == "simplest" else None)  # fmt: skip
            fit: AffineFit | None = None
            if good:
                best = choose_candidate(good, order, r2_tolerance=r2_tolerance) \
                    if selection == "simplest" else good[0]  # fmt: skip
                fit = best.fit
            if compositions and (fit is None or fit.r2 < 1 - 1e-6):
                fit = _composite_choice(pre, post, lib, good, r2_threshold, weight_simple,
                                        composition_seconds) or fit  # fmt: skip
            if fit is not None:
                _set_symbolic(model, l, i, j, fit)
                report.fixed.append(EdgeChoice(l, i, j, fit.name, fit.r2, True))
            else:
                best_name, best_r2 = (ranked[0].name, ranked[0].fit.r2) if ranked else ("-", 0.0)
                report.kept_numeric.append(EdgeChoice(l, i, j, best_name, best_r2, False))
    if refit and report.fixed:
        report.rmse_before_refit, report.rmse = refit_symbolic(model, x, target)
    return report


#: The settings the discovery engine was tuned with (pykan score, compositions, no refit:
#: the engine retrains the whole network after fixing).
ENGINE_AUTO_SYMBOLIC: dict[str, object] = {
    "selection": "score", "compositions": True, "composition_seconds": 1e9, "refit": False,
    "grid_number": 101,
}  # fmt: skip
