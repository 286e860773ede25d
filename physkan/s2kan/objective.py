"""MDL training objective of an S2KAN on the Lightning engine, for any physkan loss.

:class:`MDLObjective` wraps an :class:`~physkan.train.objectives.Objective` (regression,
Euler–Lagrange, conservation, metric, or a plugin's) and turns its mean-squared residual
``ℓ`` into a description length per sample:

    loss = ½·log2(ℓ + floor) + λ · L_model / N

``L_model`` is the model's expected model cost in bits (``model.model_cost_bits(N)``),
``floor`` is the precision of the data (:func:`objective_floor`) and ``λ ∈ [0, 1]`` is set
each step by the :class:`MDLRamp` callback (0 during warm-up, then ramped in). The callback
writes ``λ`` into the objective held by the LightningModule, so it works unchanged in every
DDP worker.

Degenerate gate samples: a hard-concrete sample can close *every* term a physics loss needs
at once, e.g. all velocity terms of a Lagrangian, whose mass matrix is then exactly zero
(:class:`~physkan.physics.SingularHessianError`). Such a sample describes no dynamics; it
carries no gradient for the gates either (every clamped gate is flat at 0). The objective
draws a fresh sample instead (up to :data:`RESAMPLES` times) and, if the gates are so closed
that every draw is degenerate, evaluates the deterministic gates; only a model whose
deterministic gates are degenerate too raises (the schedule then rolls back, see
:func:`physkan.s2kan.train.mdl_phase`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from torch import Tensor

from physkan.physics.lagrangian import SingularHessianError
from physkan.s2kan.mdl import precision_floor
from physkan.train.objectives import Batch, ModelFn, Objective

__all__ = ["RESAMPLES", "MDLObjective", "MDLRamp", "objective_floor", "ramp"]

#: fresh gate samples drawn when a sample leaves the physics loss undefined.
RESAMPLES = 4

#: batch key whose variance sets the residual scale of a built-in objective.
_TARGET_KEYS = ("y", "qddot")


def objective_floor(batch: Mapping[str, Tensor], resolution: float) -> float:
    """``resolution² · var(target)`` for targets ``y``/``qddot``; ``resolution²`` for
    normalised losses (conservation, metric), whose residuals are already relative."""
    for key in _TARGET_KEYS:
        if key in batch:
            return precision_floor(batch[key], resolution)
    return resolution**2


def ramp(step: int, total: int, fraction: float) -> float:
    """``λ(step)``: 0 for the first third of the ramp window, then linear to 1 at
    ``fraction · total`` steps, 1 afterwards."""
    start = fraction * total / 3
    end = max(fraction * total, start + 1)
    return min(max((step - start) / (end - start), 0.0), 1.0)


@dataclass
class MDLObjective:
    """``½·log2(base + floor) + lam · model_cost_bits(n) / n`` (per-sample bits).

    Args:
        base: the physics or regression objective.
        n: number of training samples ``N`` (the model cost is spread over them).
        floor: residual precision (see :func:`objective_floor`).
        lam: weight of the model cost (updated by :class:`MDLRamp`).
    """

    base: Objective
    n: int
    floor: float
    lam: float = 0.0

    def loss(self, model: ModelFn, batch: Batch) -> Tensor:
        network: Any = getattr(model, "model", model)  # the engine passes a RecordingModel
        data = 0.5 * torch.log2(self._base_loss(model, network, batch) + self.floor)
        if self.lam <= 0:
            return data
        return data + self.lam * network.model_cost_bits(self.n) / self.n

    def _base_loss(self, model: ModelFn, network: Any, batch: Batch) -> Tensor:
        """The base loss on a non-degenerate gate sample (see the module docstring)."""
        for _ in range(RESAMPLES + 1):
            try:
                return self.base.loss(model, batch)
            except SingularHessianError:
                if not getattr(network, "training", False):
                    raise  # deterministic gates: nothing to redraw
        was = network.training
        network.eval()  # every draw degenerate: the deterministic gates (raises if they are too)
        try:
            return self.base.loss(model, batch)
        finally:
            network.train(was)

    def grid_samples(self, batch: Batch) -> Tensor:
        return self.base.grid_samples(batch)


class MDLRamp(Callback):
    """Sets ``pl_module.objective.lam = ramp(global_step, total, fraction)`` before each step."""

    def __init__(self, total: int, fraction: float) -> None:
        self.total, self.fraction = int(total), float(fraction)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:  # fmt: skip
        objective = pl_module.objective
        if isinstance(objective, MDLObjective):
            objective.lam = ramp(trainer.global_step, self.total, self.fraction)
