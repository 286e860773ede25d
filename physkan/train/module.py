"""The LightningModule that trains a physkan model against an :class:`Objective`.

``loss = objective.loss(model_fn, batch) + lamb * model.regularization(acts, lamb_l1,
lamb_entropy)``, where ``model_fn`` is a :class:`RecordingModel`: it calls the network and,
when ``lamb > 0``, runs the first call through ``forward_with_activations`` and keeps its
:class:`~physkan.kan.Activations` for the regulariser. Objectives never see the
regulariser and the network needs ``forward_with_activations`` only when ``lamb > 0``.

Optimisers:

* ``"adam"``: Lightning's automatic optimisation, one Adam step per training step.
* ``"lbfgs"``: manual optimisation. One training step is one ``LBFGS.step(closure)`` with up
  to ``max_iter`` inner iterations (default 20, as pykan) and a strong-Wolfe line search, so
  ``steps`` counts outer steps and the loss is evaluated ``~max_iter * 1.25`` times per step.

Distributed training (DDP): DDP averages the gradients in every ``backward``; in addition
the loss *value* is averaged over ranks (one ``all_reduce``) before the backward pass, so
every rank's LBFGS line search sees the same numbers, takes the same decisions and makes
the same number of closure calls -- the collectives stay matched and nothing hangs. The same
``all_reduce`` carries an error flag: if computing the loss raises on any rank, every rank
raises (before any gradient collective) instead of leaving the others waiting.

Validation and test steps run under ``torch.enable_grad()`` so autograd-based objectives
work; the Trainer must be built with ``inference_mode=False`` (see ``make_trainer``).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from physkan.train.core import RecordingModel, RemoteLossError, TrainingCore, batch_size
from physkan.train.objectives import Batch, Objective

__all__ = ["HISTORY_KEY", "PhyskanModule", "RecordingModel", "RemoteLossError"]

#: ``trainer.callback_metrics`` key of the per-step training losses (survives ddp_spawn).
HISTORY_KEY = "physkan/train_loss_history"


class PhyskanModule(TrainingCore, pl.LightningModule):
    """Train ``model`` on ``objective`` with LBFGS or Adam (full-batch).

    Args:
        model: the network (e.g. :class:`~physkan.kan.MultKAN`); any ``nn.Module`` works
            when ``lamb == 0``.
        objective: see :mod:`physkan.train.objectives`.
        optimizer: ``"lbfgs"`` (manual optimisation with a closure) or ``"adam"``.
        lr: learning rate; ``None``: 1.0 for LBFGS, 1e-2 for Adam.
        lamb, lamb_l1, lamb_entropy: sparsity regularisation
            ``lamb * (lamb_l1 * L1 + lamb_entropy * entropy)`` (off when ``lamb == 0``).
        lbfgs_history: LBFGS ``history_size``.
        line_search: LBFGS ``line_search_fn`` (``"strong_wolfe"`` or ``None``).
        max_iter: LBFGS inner iterations per training step.
        tolerance_grad, tolerance_change: LBFGS stopping tolerances *within* a step (tiny by
            default, as pykan, so every step does its ``max_iter`` iterations).
        adam_betas, weight_decay: Adam options.
        param_lr: Adam learning rates by parameter-name suffix (e.g. ``{"log_alpha": 5e-2}``
            gives S2KAN gates their own rate); other parameters use ``lr``.

    Attributes:
        history: training loss per step (mean over ranks; for LBFGS the loss at the start
            of the step, as returned by ``LBFGS.step``).
        last_loss: the latest entry of ``history`` (``nan`` before the first step).
    """

    def __init__(self, model: nn.Module, objective: Objective, **options: Any) -> None:
        super().__init__()
        self.setup_training(model, objective, **options)  # the options above, validated
        self.automatic_optimization = self.optimizer_name != "lbfgs"

    # ------------------------------------------------------------------ loss
    def forward(self, x: Tensor) -> Tensor:
        """The network's forward pass ``(N, n_in) -> (N, n_out)``."""
        return self.model(x)

    # ------------------------------------------------------------------ training
    def training_step(self, batch: Batch, batch_idx: int) -> Tensor | None:
        n = batch_size(batch)
        if self.automatic_optimization:
            loss, mean = self.synced_loss(batch)
            self._record(mean, n)
            return loss
        start = self.lbfgs_step(self.optimizers(), batch, self.manual_backward)
        if start is None:  # the deadline cut the step: end training now
            self.stop_now = True
            self.trainer.should_stop = True
            return None
        self._record(start, n)
        return None

    def _record(self, mean: Tensor, n: int) -> None:
        self.history.append(float(mean))
        self.log("train_loss", mean, prog_bar=True, on_step=True, on_epoch=False, batch_size=n)

    def on_train_start(self) -> None:
        self.history = []
        self.stop_now = False

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> int | None:
        """``-1`` (Lightning: end the epoch, i.e. the run) once a callback such as
        :class:`~physkan.train.callbacks.StopAtDeadline` has set ``stop_now``."""
        return -1 if getattr(self, "stop_now", False) else None

    def on_train_end(self) -> None:
        # callback_metrics travel back to the parent process under ddp_spawn.
        self.trainer.callback_metrics[HISTORY_KEY] = torch.tensor(self.history, dtype=torch.float64)

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, batch: Batch, name: str) -> Tensor:
        with torch.enable_grad():
            _, mean = self.synced_loss(batch, regularize=False)
        self.log(
            name, mean, prog_bar=True, on_step=False, on_epoch=True, batch_size=batch_size(batch)
        )
        return mean

    def validation_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """Objective loss (no regulariser) as ``val_loss``; autograd enabled."""
        return self._evaluate(batch, "val_loss")

    def test_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """Objective loss (no regulariser) as ``test_loss``; autograd enabled."""
        return self._evaluate(batch, "test_loss")
