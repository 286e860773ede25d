"""Wall-clock time budgets shared by every stage of a discovery.

A :class:`Budget` is a deadline (an absolute :func:`time.time` value, so it survives being
sent to a DDP spawn worker) plus an ``exhausted`` flag. Stages never take a budget as an
argument (strategies keep their ``strategy(spec, data, report)`` signature); they read the
one in force with :func:`current_budget`, which :func:`budget_scope` sets (``contextvars``:
per thread and per task). With no scope open, :func:`current_budget` is an unlimited budget.

A stage that is cut short calls :meth:`Budget.mark_exhausted`; the flag propagates to every
ancestor, so the root budget of :func:`physkan.discover.discover` knows that some stage ran
out of time (``metrics.budget_exhausted``).

This module imports nothing from physkan but :mod:`physkan.errors`.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from physkan.errors import UserError

__all__ = ["Budget", "BudgetError", "budget_scope", "current_budget", "scoped"]

T = TypeVar("T")


class BudgetError(UserError, ValueError):
    """A time budget that is not a positive number of seconds."""


class Budget:
    """A wall-clock budget of ``seconds`` from now (``None``: unlimited).

    Attributes:
        deadline: absolute ``time.time()`` (s since the epoch) at which the budget ends;
            ``math.inf`` when unlimited.
        exhausted: True once some stage under this budget (or a child) was cut short.
    """

    def __init__(
        self, seconds: float | None = None, *, deadline: float | None = None, parent: Budget | None = None
    ) -> None:
        if seconds is not None and (not isinstance(seconds, (int, float)) or not seconds > 0 or seconds != seconds):
            raise BudgetError(f"time_budget: must be a positive number of seconds, got {seconds!r}")
        now = time.time()
        if deadline is None:
            deadline = math.inf if seconds is None else now + float(seconds)
        if parent is not None:
            deadline = min(deadline, parent.deadline)
        self.deadline: float = float(deadline)
        self.seconds: float | None = None if math.isinf(self.deadline) else self.deadline - now
        self.parent = parent
        self.exhausted = False

    @classmethod
    def until(cls, deadline: float) -> Budget:
        """A budget ending at the absolute ``time.time()`` value ``deadline`` (for workers)."""
        return cls(deadline=deadline)

    def remaining(self) -> float:
        """Seconds left (``>= 0``); ``math.inf`` for an unlimited budget."""
        if math.isinf(self.deadline):
            return math.inf
        return max(0.0, self.deadline - time.time())

    def expired(self) -> bool:
        """Has the deadline passed?"""
        return time.time() >= self.deadline

    def check(self) -> bool:
        """``expired()``, marking the budget exhausted when it is (a stage is being cut)."""
        if self.expired():
            self.mark_exhausted()
            return True
        return False

    def mark_exhausted(self) -> None:
        """Record that a stage was cut short; propagates to every ancestor budget."""
        b: Budget | None = self
        while b is not None:
            b.exhausted = True
            b = b.parent

    def child(self, fraction: float | None = None, seconds: float | None = None) -> Budget:
        """A sub-budget: ``fraction`` of what remains and/or at most ``seconds``; never past
        this budget's deadline. With neither, the child ends with its parent."""
        if fraction is not None and not 0 < fraction <= 1:
            raise BudgetError(f"fraction: must be in (0, 1], got {fraction!r}")
        if seconds is not None and not seconds >= 0:
            raise BudgetError(f"seconds: must be >= 0, got {seconds!r}")
        now = time.time()
        deadline = self.deadline
        if fraction is not None and not math.isinf(deadline):
            deadline = now + fraction * max(0.0, deadline - now)
        if seconds is not None:
            deadline = min(deadline, now + seconds)
        return Budget(deadline=deadline, parent=self)

    def __repr__(self) -> str:
        left = self.remaining()
        return f"Budget(remaining={'inf' if math.isinf(left) else f'{left:.1f}s'}, exhausted={self.exhausted})"


_CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("physkan_budget", default=None)


def current_budget() -> Budget:
    """The budget in force (innermost :func:`budget_scope`); an unlimited one when none is."""
    b = _CURRENT.get()
    return b if b is not None else Budget(None)


@contextmanager
def scoped(var: contextvars.ContextVar[T], value: T) -> Iterator[T]:
    """Set the context variable ``var`` to ``value`` inside the ``with`` block (the scopes of
    budgets, Pareto fronts and noise levels are all this)."""
    token = var.set(value)
    try:
        yield value
    finally:
        var.reset(token)


def budget_scope(budget: Budget) -> contextlib.AbstractContextManager[Budget]:
    """Make ``budget`` the one :func:`current_budget` returns inside the ``with`` block."""
    return scoped(_CURRENT, budget)  # type: ignore[arg-type]
