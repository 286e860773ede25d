"""The discovery pipeline: problem -> data -> strategy -> :class:`Discovery`.

:func:`discover` resolves a problem (built-in name, path or plugin problem), samples its
data and hands both to the *strategy* of the problem's type (train a KAN, prune, make it
symbolic, export and verify the formula). Strategies live in :mod:`physkan.strategies`;
their registry :data:`STRATEGIES`, :class:`Discovery` and :func:`register_strategy` are
re-exported here for compatibility.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from physkan.problems import ProblemSpec, load_problem, make_dataset
from physkan.problems.errors import ProblemError
from physkan.strategies.base import STRATEGIES, Discovery, Reporter, register_strategy

__all__ = ["Discovery", "Reporter", "STRATEGIES", "discover", "register_strategy"]


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
    strategy = STRATEGIES.find(spec.type)
    if strategy is None:
        raise ProblemError(
            f"type: no discovery strategy for problem type {spec.type!r} "
            f"(known: {', '.join(sorted(STRATEGIES.names()))})",
            source=spec.source,
        )
    say(f"sampling data for {spec.name}")
    torch.manual_seed(spec.model.seed)
    data = make_dataset(spec)
    result = strategy(spec, data, say)
    result.seconds = time.perf_counter() - start
    result.provenance = {"problem_source": str(spec.source), **data.meta}
    return result
