"""The discovery pipeline: problem -> data -> strategy -> :class:`Discovery`.

:func:`discover` resolves a problem (built-in name, path or plugin problem), samples its
data and hands both to the *strategy* of the problem's type (train a KAN, prune, make it
symbolic, export and verify the formula). Strategies live in :mod:`physkan.strategies`;
their registry :data:`STRATEGIES`, :class:`Discovery` and :func:`register_strategy` are
re-exported here for compatibility.

Time budget: the whole pipeline shares ``[discover].time_budget`` seconds (``time_budget=``
overrides it). The strategy runs in a :func:`~physkan.budget.budget_scope` whose deadline
keeps a reserve (:func:`search_seconds`) for exporting and verifying the answer; every stage
reads :func:`~physkan.budget.current_budget` and returns its best so far once it expires.
``metrics.budget_exhausted`` is 1 when some stage was cut short. Every candidate formula the
stages meet is offered to a :class:`~physkan.symbolic.pareto.ParetoFront`
(``Discovery.pareto``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

from physkan.budget import Budget, budget_scope
from physkan.problems import ProblemSpec, load_problem, make_dataset
from physkan.problems.errors import ProblemError
from physkan.strategies.base import STRATEGIES, Discovery, Reporter, register_strategy
from physkan.symbolic.pareto import Candidate, ParetoFront, front_scope
from physkan.symbolic.parse import plain_symbols
from physkan.symbolic.simplify import noise_scope

__all__ = ["Discovery", "Reporter", "STRATEGIES", "discover", "register_strategy", "search_seconds"]

_LOG = logging.getLogger(__name__)

#: Share of the time budget kept for exporting and verifying the answer, at most
#: :data:`MAX_RESERVE` seconds.
RESERVE_SHARE = 0.2
MAX_RESERVE = 8.0


def search_seconds(time_budget: float) -> float:
    """Seconds the strategy's search may use out of ``time_budget`` (the rest is reserve)."""
    return time_budget - min(RESERVE_SHARE * time_budget, MAX_RESERVE)


def _silent(_: str) -> None:
    return None


def _compiled_model(result: Discovery, spec: ProblemSpec) -> torch.nn.Module | None:
    """A network for a closed-form answer a strategy found without one (e.g. the structured
    n-DOF Lagrangian route): the formula compiled into a float64 MultKAN (kanpiler), so
    every answer can be saved, registered in the zoo and fine-tuned. ``None`` when there is
    no single closed-form formula or it does not compile (the answer stands without it)."""
    if len(result.formulas) != 1 or result.numeric_edges:
        return None
    from physkan.symbolic.compile import kanpiler

    ranges = {name: (float(lo), float(hi)) for name, (lo, hi) in (spec.data.ranges or {}).items()}
    try:
        return kanpiler(result.variables, result.formulas[0], ranges=ranges or None,
                        output=result.outputs[0] if result.outputs else "y", dtype=torch.float64)
    except Exception as exc:  # noqa: BLE001 - an uncompilable formula keeps model=None
        _LOG.warning("could not compile %s into a network: %s", result.formulas[0], exc)
        return None


def discover(
    problem: str | ProblemSpec,
    *,
    seed: int | None = None,
    steps: int | None = None,
    report: Reporter | None = None,
    time_budget: float | None = None,
) -> Discovery:
    """Run the whole pipeline on ``problem`` (a name, a path or a spec).

    Args:
        seed: overrides ``[data].seed`` and ``[model].seed``.
        steps: overrides ``[train].steps``.
        report: called with a short message at each stage (progress display).
        time_budget: seconds the whole discovery may take; overrides
            ``[discover].time_budget`` (default 60). It answers within about that time with
            the best formula found so far (``metrics.budget_exhausted`` = 1 when cut short).

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
    if time_budget is not None:
        overrides["discover.time_budget"] = time_budget
    if overrides:
        spec = spec.updated(overrides)
    strategy = STRATEGIES.find(spec.type)
    if strategy is None:
        raise ProblemError(
            f"type: no discovery strategy for problem type {spec.type!r} "
            f"(known: {', '.join(sorted(STRATEGIES.names()))})",
            source=spec.source,
        )
    seconds = spec.discover.time_budget
    t0 = time.time() - (time.perf_counter() - start)  # the wall clock when discover() began
    root = Budget.until(t0 + seconds)
    search = Budget(deadline=t0 + search_seconds(seconds), parent=root)
    front = ParetoFront()
    say(f"sampling data for {spec.name} (time budget {seconds:g} s)")
    torch.manual_seed(spec.model.seed)
    data = make_dataset(spec)
    with budget_scope(search), front_scope(front), noise_scope(spec.data.noise):
        result = strategy(spec, data, say)
    if not len(front) and len(result.formulas) == 1 and "test_rmse" in result.metrics:
        front.add(result.formulas[0], result.metrics["test_rmse"], "answer")
    if result.model is None:
        result.model = _compiled_model(result, spec)
    result.pareto = [Candidate(plain_symbols(c.formula), c.complexity, c.test_rmse, c.source) for c in front.front()]
    # exhausted: a stage was cut short, or the search ran past its deadline (an unchecked stage)
    result.metrics["budget_exhausted"] = int(root.exhausted or search.expired())
    result.seconds = time.perf_counter() - start
    result.provenance = {"problem_source": str(spec.source), **data.meta}
    return result
