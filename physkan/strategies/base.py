"""What every discovery strategy shares: :class:`Discovery`, :data:`Reporter` and the registry.

A *strategy* turns a validated problem and its data into a :class:`Discovery`:
``strategy(spec, data, report) -> Discovery``. :data:`STRATEGIES` maps a problem type to its
strategy. The built-in ones are listed once, in :data:`BUILTIN_STRATEGIES`, and imported on
first use (a strategy module pulls in the training engine); plugins add theirs for their
problem types through :func:`register_strategy` (the plugin host calls it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sympy
from torch import nn

from physkan.registry import BUILTIN, Registry
from physkan.symbolic.pareto import Candidate
from physkan.symbolic.parse import plain_symbols
from physkan.symbolic.simplify import to_latex, to_text

if TYPE_CHECKING:  # pragma: no cover - typing only
    from physkan.problems import Dataset, ProblemSpec

__all__ = [
    "BUILTIN_STRATEGIES",
    "STRATEGIES",
    "Discovery",
    "Reporter",
    "Strategy",
    "get_strategy",
    "register_strategy",
]

#: progress callback: called with one short message per stage.
Reporter = Callable[[str], None]


@dataclass
class Discovery:
    """What a discovery found.

    Attributes:
        formulas: one sympy expression per output (``L`` for a Lagrangian problem).
        recovered: True/False against the ground truth, ``None`` when there is none.
        recovery: why (or why not) the formula counts as recovered.
        metrics: ``test_rmse`` and type-specific figures (rollout errors, loss, ...).
        numeric_edges: edges that stayed splines (the formula is then partial).
        pareto: the Pareto front of the candidate formulas met (complexity against test
            RMSE), simplest first (:class:`~physkan.symbolic.pareto.ParetoFront`).
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
    pareto: list[Candidate] = field(default_factory=list)

    def __post_init__(self) -> None:
        # the public symbol convention: plain symbols, as users type them (strategies may
        # compute with real=True symbols internally)
        self.formulas = [plain_symbols(f) for f in self.formulas]
        self.pareto = [Candidate(plain_symbols(c.formula), c.complexity, c.test_rmse, c.source)
                       for c in self.pareto]  # fmt: skip

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
            "pareto": [c.as_json() for c in self.pareto],
        }

    def _repr_latex_(self) -> str:
        """Jupyter: the formula(s) as display math."""
        from physkan.strategies.display import result_latex

        return result_latex(self.outputs, self.formulas)

    def _repr_html_(self) -> str:
        """Jupyter: formula, recovered, metrics, Pareto front and the network drawn."""
        from physkan.strategies.display import result_html

        return result_html(title=f"{self.problem} ({self.type})", outputs=self.outputs,
                           formulas=self.formulas, recovered=self.recovered, recovery=self.recovery,
                           metrics=self.metrics, pareto=self.pareto, model=self.model)  # fmt: skip


Strategy = Callable[["ProblemSpec", "Dataset", Reporter], Discovery]


@dataclass(frozen=True)
class _Builtin:
    """A built-in strategy, imported from ``module`` on its first call."""

    module: str
    function: str

    def resolve(self) -> Strategy:
        return getattr(importlib.import_module(self.module), self.function)

    def __call__(self, spec: ProblemSpec, data: Dataset, report: Reporter) -> Discovery:
        return self.resolve()(spec, data, report)


#: problem type -> ``module:function`` of its built-in strategy (the one list of them).
#: Regression tries the sparse fit over ``[discover].augment`` first when it is set.
BUILTIN_STRATEGIES: dict[str, str] = {
    "regression": "physkan.strategies.augmented:discover_regression_with_augment",
    "lagrangian": "physkan.strategies.lagrangian:discover_lagrangian",
    "conservation": "physkan.strategies.conservation:discover_conservation",
    "metric": "physkan.strategies.metric:discover_metric",
    "hamiltonian": "physkan.strategies.hamiltonian:discover_hamiltonian",
}

#: problem type -> strategy (built-ins, then plugins' types).
STRATEGIES: Registry[Strategy] = Registry("discovery strategy")


def register_strategy(
    problem_type: str, strategy: Strategy, *, source: str = BUILTIN, replace: bool = False
) -> None:
    """Register how problems of ``problem_type`` are discovered (plugins use this).

    Raises:
        physkan.registry.NameClash: the type has a strategy and ``replace`` is false.
    """
    STRATEGIES.register(problem_type, strategy, source=source, replace=replace)


def get_strategy(problem_type: str) -> Strategy | None:
    """The strategy of ``problem_type``, or ``None`` when it has none."""
    return STRATEGIES.find(problem_type)


for _type, _target in BUILTIN_STRATEGIES.items():
    _module, _function = _target.split(":")
    register_strategy(_type, _Builtin(_module, _function))
