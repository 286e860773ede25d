"""A hypothesis-testing session: the current model, versions, and a log of operations.

Every operation run through :meth:`Session.run` (fit, prune, fix_symbolic, ...) is logged
with its name, arguments, start time and duration, and the resulting model is saved as a
new version. Versions are named ``"<branch>.<step>"`` as in KAN 2.0: the initial model is
``"0.0"``, each operation increments the step, and :meth:`Session.rewind` to an older
version starts a new branch (rewinding to ``"0.1"`` gives ``"1.1"``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from physkan.interpret.history import History
from physkan.interpret.prune import prune, prune_input
from physkan.kan import MultKAN

__all__ = ["Record", "Session"]


@dataclass
class Record:
    """One logged operation.

    Attributes:
        op: operation name (``"fit"``, ``"prune"``, ``"rewind"``, ...).
        args: its arguments (tensors summarised by their shape).
        time: wall-clock start (``time.time()``); duration: seconds it took.
        version: the version saved after it (``None`` for checkpoints only).
        result: a short summary of what it returned (e.g. a loss).
    """

    op: str
    args: dict[str, Any]
    time: float
    duration: float = 0.0
    version: str | None = None
    result: Any = None

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.args.items())
        res = "" if self.result is None else f" -> {self.result}"
        return f"[{self.version}] {self.op}({args}){res} ({self.duration:.3g}s)"


def _summary(value: Any) -> Any:
    if isinstance(value, Tensor):
        return f"Tensor{tuple(value.shape)}"
    if isinstance(value, (list, tuple)) and len(value) > 8:
        return f"{type(value).__name__}[{len(value)}]"
    return value


@dataclass
class Session:
    """Holds the current ``model``, its versions (a :class:`History`) and the ``log``."""

    model: MultKAN
    history: History = field(default_factory=History)
    log: list[Record] = field(default_factory=list)
    branch: int = 0
    step: int = 0

    def __post_init__(self) -> None:
        self._save()

    @property
    def version(self) -> str:
        """The current version name ``"<branch>.<step>"``."""
        return f"{self.branch}.{self.step}"

    def _save(self) -> str:
        self.history.save(self.model, self.version)
        return self.version

    def run(self, op: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Apply ``fn(model, *args, **kwargs)``; a returned :class:`MultKAN` replaces the
        current model. Logs the operation and saves the next version. Returns ``fn``'s result."""
        start = time.time()
        out = fn(self.model, *args, **kwargs)
        if isinstance(out, MultKAN):
            self.model = out
            summary = f"width={out.width_spec}"
        else:
            summary = _summary(out)
        self.step += 1
        rec = Record(
            op=op,
            args={**{f"arg{i}": _summary(a) for i, a in enumerate(args)},
                  **{k: _summary(v) for k, v in kwargs.items()}},
            time=start,
            duration=time.time() - start,
            version=self._save(),
            result=summary,
        )
        self.log.append(rec)
        return out

    def checkpoint(self, name: str) -> None:
        """Save the current model under an extra, user-chosen ``name``."""
        self.history.save(self.model, name)
        self.log.append(Record("checkpoint", {"name": name}, time.time(), version=self.version))

    def rewind(self, name: str) -> MultKAN:
        """Make checkpoint/version ``name`` the current model (exact parameters and
        structure); starts a new branch. Returns the model."""
        start = time.time()
        self.model = self.history.restore(name, self.model)  # type: ignore[assignment]
        self.branch += 1
        if "." in name and name.split(".")[-1].isdigit():
            self.step = int(name.split(".")[-1])
        self._save()
        self.log.append(
            Record("rewind", {"name": name}, start, time.time() - start, version=self.version)
        )
        return self.model

    # convenience wrappers ------------------------------------------------------------
    def prune(self, x: Tensor, node_th: float = 1e-2, edge_th: float = 3e-2) -> MultKAN:
        """:func:`physkan.interpret.prune.prune` on the current model."""
        return self.run("prune", prune, x, node_th=node_th, edge_th=edge_th)

    def prune_input(self, x: Tensor, threshold: float | None = None,
                    keep: list[str] | None = None) -> MultKAN:
        """:func:`physkan.interpret.prune.prune_input` on the current model."""
        return self.run("prune_input", prune_input, x, threshold=threshold, keep=keep)

    def fit(self, trainer: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Train in place with ``trainer(model, *args, **kwargs)`` (logged as ``"fit"``)."""
        return self.run("fit", trainer, *args, **kwargs)

    def fix_symbolic(self, fixer: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Fix edges with ``fixer(model, *args, **kwargs)`` (logged as ``"fix_symbolic"``)."""
        return self.run("fix_symbolic", fixer, *args, **kwargs)

    def describe(self) -> str:
        """The log as text, one operation per line."""
        return "\n".join(str(r) for r in self.log)
