"""The AI Feynman benchmark harness: discover every equation of a CSV, report recovery.

Each row of the CSV (see :mod:`physkan.problems.feynman`) becomes a regression problem
sampled on its box; :func:`physkan.discover.discover` runs on it and the row records exact
recovery, the formula's test RMSE and the wall time. A row that raises is recorded as
failed with the reason, and the run goes on.

With a time budget ``S`` each row's discovery runs with ``time_budget=S`` and answers within
it (``budget_exhausted`` records whether it was cut short); a row over ``S`` by more than
:data:`OVERRUN_SLACK` is flagged ``over_budget`` (a bug). A hard alarm at
:func:`hard_limit` seconds still ends a runaway row, so the run goes on.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from physkan.errors import PhyskanError

__all__ = ["OVERRUN_SLACK", "BenchRow", "BenchSummary", "RowTimeout", "hard_limit", "run_feynman_bench"]

#: Relative overrun of the time budget a row may show before it is flagged ``over_budget``.
OVERRUN_SLACK = 0.1


def hard_limit(time_budget: float) -> float:
    """Seconds after which a row is killed (SIGALRM): well past the budget it must meet."""
    return 2.0 * time_budget + 30.0


@dataclass
class BenchRow:
    """The outcome of one equation."""

    name: str
    truth: str
    formula: str
    recovered: bool
    test_rmse: float
    seconds: float
    error: str | None = None
    recovery: str = ""
    budget_exhausted: bool = False
    over_budget: bool = False


@dataclass
class BenchSummary:
    """All rows and the overall exact-recovery rate."""

    rows: list[BenchRow] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def n_recovered(self) -> int:
        return sum(r.recovered for r in self.rows)

    @property
    def rate(self) -> float:
        """Fraction of equations recovered exactly (0 for an empty run)."""
        return self.n_recovered / self.n if self.rows else 0.0

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.rows)

    @property
    def n_over_budget(self) -> int:
        return sum(r.over_budget for r in self.rows)

    def quantile_seconds(self, q: float) -> float:
        """The ``q``-quantile (0..1, nearest rank) of the per-row wall times, seconds."""
        times = sorted(r.seconds for r in self.rows)
        if not times:
            return 0.0
        return times[min(len(times) - 1, max(0, math.ceil(q * len(times)) - 1))]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: ``rows``, ``n``, ``recovered``, ``rate``, ``seconds`` (total),
        ``median_seconds``, ``p90_seconds``, ``max_seconds`` (per row), ``over_budget``."""
        return {
            "n": self.n,
            "recovered": self.n_recovered,
            "rate": self.rate,
            "seconds": round(self.seconds, 3),
            "median_seconds": round(self.quantile_seconds(0.5), 3),
            "p90_seconds": round(self.quantile_seconds(0.9), 3),
            "max_seconds": round(self.quantile_seconds(1.0), 3),
            "over_budget": self.n_over_budget,
            "rows": [asdict(r) for r in self.rows],
        }


class RowTimeout(PhyskanError):
    """An equation ran past the harness's per-row time limit."""


@contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`RowTimeout` after ``seconds`` (SIGALRM; a no-op off the main thread)."""
    usable = seconds and hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def _raise(signum, frame):  # noqa: ARG001 - signal handler signature
        raise RowTimeout(f"no result within {seconds:g} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, old)


def _run_one(eq: Any, *, seed: int, steps: int | None, n_train: int, n_test: int,
             time_budget: float | None = None, noise: float = 0.0) -> BenchRow:  # fmt: skip
    from physkan.discover import discover
    from physkan.problems.feynman import feynman_problem

    start = time.perf_counter()
    try:
        with _time_limit(hard_limit(time_budget) if time_budget else None):
            spec = feynman_problem(eq, n_train=n_train, n_test=n_test, seed=seed)
            if noise:
                spec = spec.updated({"data.noise": noise})
            result = discover(spec, seed=seed, steps=steps, time_budget=time_budget)
    except Exception as exc:  # noqa: BLE001 - a failing row is reported, the run goes on
        seconds = time.perf_counter() - start
        return BenchRow(eq.name, eq.formula, "", False, float("nan"), seconds,
                        error=f"{type(exc).__name__}: {exc}"[:300],
                        over_budget=bool(time_budget and seconds > time_budget * (1 + OVERRUN_SLACK)))  # fmt: skip
    seconds = time.perf_counter() - start
    return BenchRow(
        name=eq.name, truth=eq.formula, formula="; ".join(result.formula_text),
        recovered=bool(result.recovered), test_rmse=float(result.metrics.get("test_rmse", float("nan"))),
        seconds=seconds, recovery=result.recovery,
        budget_exhausted=bool(result.metrics.get("budget_exhausted", 0)),
        over_budget=bool(time_budget and seconds > time_budget * (1 + OVERRUN_SLACK)),
    )  # fmt: skip


def run_feynman_bench(
    csv_path: str | Path,
    *,
    limit: int | None = None,
    names: Iterable[str] | None = None,
    seed: int = 0,
    steps: int | None = None,
    n_train: int = 1000,
    n_test: int = 1000,
    time_budget: float | None = None,
    noise: float = 0.0,
    on_row: Callable[[BenchRow], None] | None = None,
    timeout: float | None = None,
) -> BenchSummary:
    """Run discovery on the equations of ``csv_path`` (the first ``limit`` / only ``names``).

    Args:
        steps: overrides ``[train].steps`` of every problem (``None``: the default).
        time_budget: seconds per equation, passed to discovery (``None``: each problem's
            ``[discover].time_budget``); ``timeout`` is its old name (alias).
        noise: ``[data].noise`` of every problem (relative Gaussian noise on the targets).
        on_row: called after each equation (progress display).

    Raises:
        ProblemError: the CSV cannot be read or is malformed.
    """
    from physkan.problems.feynman import read_feynman_csv

    time_budget = time_budget if time_budget is not None else timeout
    equations = read_feynman_csv(csv_path)
    if names is not None:
        wanted = set(names)
        equations = [e for e in equations if e.name in wanted]
    if limit is not None:
        equations = equations[:limit]
    summary = BenchSummary()
    for eq in equations:
        row = _run_one(eq, seed=seed, steps=steps, n_train=n_train, n_test=n_test,
                       time_budget=time_budget, noise=noise)  # fmt: skip
        summary.rows.append(row)
        if on_row is not None:
            on_row(row)
    return summary
