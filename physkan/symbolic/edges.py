"""Making KAN edges symbolic: suggest, fix, unfix and auto-symbolic on a trained network.

An edge ``(l, i, j)`` connects node ``i`` of layer ``l`` to subnode ``j`` of layer ``l+1``.
Fixing it to ``f`` fits ``y ≈ c·f(a·x + b) + d`` to its current pre-/post-activations on
samples ``x`` and switches the edge to its symbolic branch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from physkan.kan.network import MultKAN
from physkan.symbolic.fit import AffineFit, Candidate, affine_fit, suggest_symbolic
from physkan.symbolic.library import SymbolicFunction, get_symbolic, resolve_library

__all__ = [
    "AutoSymbolicReport",
    "EdgeChoice",
    "auto_symbolic",
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
    l: int,
    i: int,
    j: int,
    name: str,
    x: Tensor | None = None,
    *,
    fit_params: bool = True,
) -> AffineFit:
    """Make edge ``(l, i, j)`` the symbolic function ``name``.

    With samples ``x`` and ``fit_params``, (a, b, c, d) are fitted to the edge's current
    activations; otherwise the edge becomes exactly ``name(x)`` (a=1, b=0, c=1, d=0).

    Raises:
        UnknownSymbolicError: for a name not in the symbolic library.
        ValueError: for an edge index out of range.
    """
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


def auto_symbolic(
    model: MultKAN,
    x: Tensor,
    library: Library = None,
    *,
    r2_threshold: float = 0.99,
    weight_simple: float = 0.8,
    compositions: bool = True,
) -> AutoSymbolicReport:
    """Fix every active numeric edge to its best-scoring library function.

    An edge is fixed when the best candidate (by :func:`~physkan.symbolic.fit.score_candidate`,
    which trades fit against complexity) has ``r2 >= r2_threshold``. With ``compositions``,
    when no single function fits to ``r2 > 1 - 1e-6``, a composite ``f(alpha h(x) + beta)`` of
    two library functions is also tried (:func:`~physkan.symbolic.composite.fit_composition`)
    and wins if its score is higher; an edge that fits nothing stays a spline and is
    reported in ``kept_numeric``.
    """
    lib = resolve_library(library) if not isinstance(library, Mapping) else dict(library)
    report = AutoSymbolicReport()
    with torch.no_grad():
        _, acts = model.forward_with_activations(x)
    for l, layer in enumerate(model.layers):
        alive = (layer.mask * (1 - layer.symbolic_mask)).nonzero().tolist()
        for i, j in alive:
            pre, post = acts.inputs[l][:, i], acts.edges[l][:, i, j]
            ranked = suggest_symbolic(pre, post, lib, weight_simple=weight_simple, topk=0)
            good = [
                c for c in ranked if c.fit.r2 >= r2_threshold and not _degenerate(c, pre, lib)
            ]
            composite = None
            if compositions and (not good or good[0].fit.r2 < 1 - 1e-6):
                from physkan.symbolic.composite import fit_composition

                composite = fit_composition(pre, post, lib, r2_threshold=r2_threshold,
                                            weight_simple=weight_simple)  # fmt: skip
                if composite is not None and good and composite.score <= good[0].score:
                    composite = None  # the single function is the shorter description
            if good and composite is None:
                best = good[0]
                _set_symbolic(model, l, i, j, best.fit)
                report.fixed.append(EdgeChoice(l, i, j, best.name, best.fit.r2, True))
            elif composite is not None:
                fit = AffineFit(1.0, 0.0, composite.c, composite.d, composite.r2, composite.name)
                _set_symbolic(model, l, i, j, fit)
                report.fixed.append(EdgeChoice(l, i, j, composite.name, composite.r2, True))
            else:
                best_name, best_r2 = (ranked[0].name, ranked[0].fit.r2) if ranked else ("-", 0.0)
                report.kept_numeric.append(EdgeChoice(l, i, j, best_name, best_r2, False))
    return report
