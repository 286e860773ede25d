"""The discovery pipeline: problem -> data -> train -> prune -> symbolic -> verify.

:func:`discover` resolves a problem (built-in name, path or plugin problem), samples its
data, trains a KAN with the Lightning engine, simplifies it (attribution-based pruning,
auto-symbolic with affine fits, a refit of the symbolic parameters), exports the formula
and checks it against the ground truth when there is one. Each problem type has a
*strategy* in :data:`STRATEGIES`; plugins add their own with :func:`register_strategy`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sympy
import torch
from torch import nn

from physkan.problems import Dataset, ProblemSpec, load_problem, make_dataset
from physkan.problems.errors import ProblemError
from physkan.symbolic.simplify import to_latex, to_text

__all__ = ["Discovery", "STRATEGIES", "discover", "register_strategy"]

Reporter = Callable[[str], None]


@dataclass
class Discovery:
    """What :func:`discover` found.

    Attributes:
        formulas: one sympy expression per output (``L`` for a Lagrangian problem).
        recovered: True/False against the ground truth, ``None`` when there is none.
        recovery: why (or why not) the formula counts as recovered.
        metrics: ``test_rmse`` and type-specific figures (rollout errors, loss, ...).
        numeric_edges: edges that stayed splines (the formula is then partial).
    """

    problem: str
    type: str
    variables: list[str]
    outputs: list[str]
    formulas: list[sympy.Expr]
    recovered: bool | None
    recovery: str
    metrics: dict[str, float]
    seconds: float
    model: nn.Module | None = None
    numeric_edges: list[tuple[int, int, int]] = field(default_factory=list)
    symbolic_report: str = ""
    zoo_id: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def formula_text(self) -> list[str]:
        return [to_text(f) for f in self.formulas]

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object of ``physkan discover`` (contract: see DESIGN.md)."""
        texts = self.formula_text
        return {
            "problem": self.problem,
            "type": self.type,
            "formula": texts[0] if len(texts) == 1 else "; ".join(
                f"{o} = {t}" for o, t in zip(self.outputs, texts)
            ),
            "formulas": texts,
            "latex": [to_latex(f) for f in self.formulas],
            "outputs": self.outputs,
            "variables": self.variables,
            "recovered": self.recovered,
            "recovery": self.recovery,
            "metrics": self.metrics,
            "seconds": round(self.seconds, 3),
            "numeric_edges": [list(e) for e in self.numeric_edges],
            "zoo_id": self.zoo_id,
        }


Strategy = Callable[[ProblemSpec, Dataset, Reporter], Discovery]
STRATEGIES: dict[str, Strategy] = {}


def register_strategy(problem_type: str, strategy: Strategy) -> None:
    """Register how problems of ``problem_type`` are discovered (plugins use this)."""
    STRATEGIES[problem_type] = strategy


def _silent(_: str) -> None:
    return None


def discover(
    problem: str | ProblemSpec,
    *,
    seed: int | None = None,
    steps: int | None = None,
    report: Reporter | None = None,
) -> Discovery:
    """Run the whole pipeline on ``problem`` (a name, a path or a spec).

    Args:
        seed: overrides ``[data].seed`` and ``[model].seed``.
        steps: overrides ``[train].steps``.
        report: called with a short message at each stage (progress display).

    Raises:
        ProblemError: for an unknown problem, an invalid file or unusable data.
    """
    start = time.perf_counter()
    say = report or _silent
    spec = problem if isinstance(problem, ProblemSpec) else load_problem(problem)
    overrides: dict[str, Any] = {}
    if seed is not None:
        overrides.update({"data.seed": seed, "model.seed": seed})
    if steps is not None:
        overrides["train.steps"] = steps
    if overrides:
        spec = spec.updated(overrides)
    _load_builtin_strategies()
    _load_plugin_strategies()
    if spec.type not in STRATEGIES:
        raise ProblemError(
            f"type: no discovery strategy for problem type {spec.type!r} "
            f"(known: {', '.join(sorted(STRATEGIES))})",
            source=spec.source,
        )
    say(f"sampling data for {spec.name}")
    torch.manual_seed(spec.model.seed)
    data = make_dataset(spec)
    result = STRATEGIES[spec.type](spec, data, say)
    result.seconds = time.perf_counter() - start
    result.provenance = {"problem_source": str(spec.source), **data.meta}
    return result


def _load_plugin_strategies() -> None:
    try:
        from physkan.plugins.manager import get_plugin_manager
    except ImportError:
        return
    for problem_type, record in get_plugin_manager().problem_types().items():
        strategy = getattr(record, "strategy", None)
        if strategy is not None:
            STRATEGIES.setdefault(problem_type, strategy)


def _load_builtin_strategies() -> None:
    """Import the built-in strategies (each module registers itself)."""
    import physkan.strategies  # noqa: F401
