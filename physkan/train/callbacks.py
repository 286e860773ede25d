"""Lightning callbacks of the physkan training engine.

* :class:`GridUpdate` -- adapt the KAN grids to the training inputs every ``every`` steps,
  identically on every DDP rank.
* :class:`NamedCheckpoints` -- keep in-memory copies of the model state by name; rewind.
* :class:`EarlyStopOnLoss` -- stop once the training loss reaches a threshold.
* :class:`StopAtDeadline` -- stop once a wall-clock deadline (the time budget) has passed.
* :class:`ParameterSyncCheck` -- measure how far the ranks' models drifted apart.
* :func:`progress_bar` -- Lightning's ``RichProgressBar`` (or nothing).

Steps are ``trainer.global_step`` values: "at step ``s``" means before the ``s``-th
optimiser step runs, i.e. after ``s`` completed steps (one ``LBFGS.step(closure)`` or one
Adam update each).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.callbacks import Callback, RichProgressBar
from torch import Tensor, nn

from physkan.train.core import grid_update_due, update_grid_in_place
from physkan.train.data import rank_and_world

__all__ = [
    "DIVERGENCE_KEY",
    "EarlyStopOnLoss",
    "GridUpdate",
    "NamedCheckpoints",
    "ParameterSyncCheck",
    "StopAtDeadline",
    "broadcast_state",
    "progress_bar",
    "update_grid_in_place",
]

#: ``trainer.callback_metrics`` key of :class:`ParameterSyncCheck`'s result.
DIVERGENCE_KEY = "physkan/param_divergence"


@torch.no_grad()
def broadcast_state(model: nn.Module, src: int = 0) -> None:
    """Copy every parameter and buffer of rank ``src`` to all ranks (no-op without DDP)."""
    _, world = rank_and_world()
    if world == 1:
        return
    for tensor in [*model.parameters(), *model.buffers()]:
        dist.broadcast(tensor.data, src=src)


class GridUpdate(Callback):
    """Adapt the grids at steps ``0, every, 2*every, ...`` below ``until``.

    The samples are the objective's ``grid_samples(batch)``; under DDP they are gathered
    from all ranks, every rank updates on the same full set and rank 0's result is then
    broadcast, so the models stay bitwise identical. The update keeps parameter objects
    (:func:`update_grid_in_place`). An LBFGS optimiser's state (curvature history) is reset
    afterwards because the parametrisation changed; Adam's moments are kept (as pykan).

    Args:
        every: update period in steps (>= 1).
        until: no update at steps ``>= until`` (``None``: never stop).
        reset_optimizer: force (True) or forbid (False) the optimiser reset; ``None``: LBFGS only.
    """

    def __init__(self, every: int, until: int | None = None, reset_optimizer: bool | None = None):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every, self.until, self.reset_optimizer = int(every), until, reset_optimizer
        self.updated_at: list[int] = []

    def due(self, step: int) -> bool:
        """Whether the grids are updated before step ``step``."""
        return grid_update_due(step, self.every, self.until)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if not self.due(step):
            return
        model = pl_module.model
        samples = pl_module.objective.grid_samples(batch).detach()
        _, world = rank_and_world()
        if world > 1:
            parts = [torch.empty_like(samples) for _ in range(world)]
            dist.all_gather(parts, samples.contiguous())
            samples = torch.cat(parts)
        update_grid_in_place(model, samples)
        broadcast_state(model)
        for opt in trainer.optimizers:
            reset = self.reset_optimizer
            if reset is None:
                reset = isinstance(opt, torch.optim.LBFGS)
            if reset:
                opt.state.clear()
        self.updated_at.append(step)


class NamedCheckpoints(Callback):
    """In-memory copies of the model's ``state_dict`` by name.

    Args:
        at: ``name -> step``: save before that step runs; a step at or past the end of
            training saves the final state.
        final: also save the final state under this name (``None``: don't).

    Use :meth:`save` to add one by hand and :meth:`rewind` to load one back. The copies live
    in the process that trained: under ``ddp_spawn`` they stay in the worker processes.
    """

    def __init__(self, at: Mapping[str, int] | None = None, final: str | None = "final") -> None:
        self.at = dict(at or {})
        self.final = final
        self.states: dict[str, dict[str, Tensor]] = {}
        self.saved_at: dict[str, int] = {}
        self._model: nn.Module | None = None

    @property
    def names(self) -> list[str]:
        return list(self.states)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._model = pl_module.model

    def save(self, name: str, model: nn.Module | None = None, step: int = -1) -> None:
        """Store a detached copy of ``model``'s (default: the trained model's) state."""
        model = self._resolve(model)
        self.states[name] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.saved_at[name] = step

    def rewind(self, name: str, model: nn.Module | None = None) -> nn.Module:
        """Load checkpoint ``name`` into ``model`` (default: the trained model); returns it."""
        if name not in self.states:
            raise KeyError(f"no checkpoint named {name!r} (have: {self.names})")
        model = self._resolve(model)
        model.load_state_dict(copy.deepcopy(self.states[name]))
        return model

    def _resolve(self, model: nn.Module | None) -> nn.Module:
        model = model if model is not None else self._model
        if model is None:
            raise RuntimeError("no model: pass one, or attach the callback to a Trainer first")
        return model

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        for name, at in self.at.items():
            if at == step and name not in self.states:
                self.save(name, pl_module.model, step)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = trainer.global_step
        for name, at in self.at.items():
            if at >= step and name not in self.states:
                self.save(name, pl_module.model, step)
        if self.final is not None:
            self.save(self.final, pl_module.model, step)


class EarlyStopOnLoss(Callback):
    """Stop training once ``trainer.callback_metrics[monitor] <= threshold``.

    The training loss logged by :class:`~physkan.train.module.PhyskanModule` is already
    averaged over ranks, so every rank stops at the same step.
    """

    def __init__(self, threshold: float, monitor: str = "train_loss") -> None:
        self.threshold, self.monitor = float(threshold), monitor
        self.stopped_at: int | None = None

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and float(value) <= self.threshold:
            trainer.should_stop = True
            if self.stopped_at is None:
                self.stopped_at = trainer.global_step


class StopAtDeadline(Callback):
    """Stop training after the step during which ``time.time()`` passed ``deadline``.

    ``deadline`` is an absolute ``time.time()`` value (seconds since the epoch), so the
    callback can be pickled into ``ddp_spawn`` workers. The decision is reduced over ranks
    (any rank past the deadline stops them all at the same step: collectives stay matched).
    In one process :class:`~physkan.train.module.PhyskanModule` also cuts an LBFGS step at
    the deadline (keeping the best point it evaluated); under DDP a step runs to its end.

    Attributes:
        stopped_at: the step at which it stopped training (``None``: it did not).
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = float(deadline)
        self.stopped_at: int | None = None

    def _past(self, trainer: pl.Trainer) -> bool:
        if math.isinf(self.deadline):
            return False
        return bool(trainer.strategy.reduce_boolean_decision(time.time() >= self.deadline, all=False))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pl_module.deadline = self.deadline  # PhyskanModule cuts an LBFGS step at it (one process)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._past(trainer):
            trainer.should_stop = True
            if self.stopped_at is None:
                self.stopped_at = trainer.global_step
            pl_module.stop_now = True  # PhyskanModule.on_train_batch_start ends the run now


class ParameterSyncCheck(Callback):
    """At the end of training, store ``max |theta_rank - theta_rank0|`` over all ranks,
    parameters and buffers in ``trainer.callback_metrics[DIVERGENCE_KEY]`` (0 without DDP)."""

    @torch.no_grad()
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        tensors = [*pl_module.model.parameters(), *pl_module.model.buffers()]
        flat = torch.cat([t.detach().reshape(-1).to(torch.float64).cpu() for t in tensors])
        _, world = rank_and_world()
        diff = torch.zeros((), dtype=torch.float64)
        if world > 1:
            device = "cuda" if dist.get_backend() == "nccl" else "cpu"
            local = flat.to(device)
            ref = local.clone()
            dist.broadcast(ref, src=0)
            diff = (local - ref).abs().max()
            dist.all_reduce(diff, op=dist.ReduceOp.MAX)
        trainer.callback_metrics[DIVERGENCE_KEY] = diff.cpu()


def progress_bar(enabled: bool = True) -> RichProgressBar | None:
    """Lightning's ``RichProgressBar`` when ``enabled`` (else ``None``: no bar)."""
    return RichProgressBar(leave=True) if enabled else None
