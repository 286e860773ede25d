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

import math
import time
from collections.abc import Mapping
from typing import Any, Literal

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from torch import Tensor, nn

from physkan.errors import PhyskanError
from physkan.train.data import rank_and_world
from physkan.train.objectives import Batch, Objective

__all__ = ["HISTORY_KEY", "PhyskanModule", "RecordingModel", "RemoteLossError"]

#: ``trainer.callback_metrics`` key of the per-step training losses (survives ddp_spawn).
HISTORY_KEY = "physkan/train_loss_history"


class RemoteLossError(PhyskanError, RuntimeError):
    """Another DDP rank failed to compute its loss; this rank stops with it."""


class _DeadlinePassed(PhyskanError):
    """Raised inside an LBFGS closure once the time budget's deadline has passed."""


class RecordingModel:
    """Callable wrapper ``(N, n_in) -> (N, n_out)`` handed to objectives.

    With ``record=True`` its first call uses ``model.forward_with_activations`` and stores
    the activations in :attr:`activations` (later calls are plain forwards).
    """

    def __init__(self, model: nn.Module, record: bool) -> None:
        self.model = model
        self.record = record
        self.activations: Any = None

    def __call__(self, x: Tensor) -> Tensor:
        if self.record and self.activations is None:
            y, self.activations = self.model.forward_with_activations(x)
            return y
        return self.model(x)


def _synced(loss: Tensor | None, error: BaseException | None) -> Tensor:
    """Mean of the loss over DDP ranks; raise on every rank if any rank failed.

    Args:
        loss: this rank's 0-dim loss, or None when computing it raised ``error``.

    Returns:
        detached 0-dim tensor, identical on every rank.
    """
    rank, world = rank_and_world()
    if world == 1:
        if error is not None:
            raise error
        assert loss is not None
        return loss.detach()
    value = float(loss.detach()) if loss is not None else 0.0
    device = (
        torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    )
    packed = torch.tensor([value, float(error is not None)], dtype=torch.float64, device=device)
    dist.all_reduce(packed, op=dist.ReduceOp.SUM)
    if error is not None:
        raise error
    if packed[1].item() > 0:
        raise RemoteLossError(
            f"rank {rank}: {int(packed[1].item())} other rank(s) failed to compute the loss"
        )
    assert loss is not None
    return (packed[0] / world).to(loss.dtype).to(loss.device)


class PhyskanModule(pl.LightningModule):
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

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        *,
        optimizer: Literal["lbfgs", "adam"] = "lbfgs",
        lr: float | None = None,
        lamb: float = 0.0,
        lamb_l1: float = 1.0,
        lamb_entropy: float = 1.0,
        lbfgs_history: int = 10,
        line_search: str | None = "strong_wolfe",
        max_iter: int = 20,
        tolerance_grad: float = 1e-32,
        tolerance_change: float = 1e-32,
        adam_betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        param_lr: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        optimizer = optimizer.lower()  # type: ignore[assignment]
        if optimizer not in ("lbfgs", "adam"):
            raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")
        if lamb < 0 or lamb_l1 < 0 or lamb_entropy < 0:
            raise ValueError("lamb, lamb_l1 and lamb_entropy must be >= 0")
        if lamb > 0 and not hasattr(model, "forward_with_activations"):
            raise TypeError(
                f"lamb > 0 needs a model with forward_with_activations() and regularization() "
                f"(e.g. a KAN); got {type(model).__name__}"
            )
        if max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {max_iter}")
        self.model = model
        self.objective = objective
        self.optimizer_name = optimizer
        self.lr = float(lr) if lr is not None else (1.0 if optimizer == "lbfgs" else 1e-2)
        self.lamb, self.lamb_l1, self.lamb_entropy = (
            float(lamb),
            float(lamb_l1),
            float(lamb_entropy),
        )
        self.lbfgs_options = dict(
            max_iter=int(max_iter),
            history_size=int(lbfgs_history),
            line_search_fn=line_search,
            tolerance_grad=float(tolerance_grad),
            tolerance_change=float(tolerance_change),
        )
        self.adam_options = dict(betas=tuple(adam_betas), weight_decay=float(weight_decay))
        if param_lr and optimizer == "lbfgs":
            raise ValueError("param_lr needs optimizer='adam' (LBFGS has one learning rate)")
        self.param_lr = {str(k): float(v) for k, v in (param_lr or {}).items()}
        self.automatic_optimization = optimizer != "lbfgs"
        self.history: list[float] = []
        #: absolute ``time.time()`` deadline (set by ``StopAtDeadline``); in one process an
        #: LBFGS step is cut inside at the deadline, keeping the best parameters it evaluated
        self.deadline = math.inf

    # ------------------------------------------------------------------ loss
    @property
    def last_loss(self) -> float:
        return self.history[-1] if self.history else float("nan")

    def forward(self, x: Tensor) -> Tensor:
        """The network's forward pass ``(N, n_in) -> (N, n_out)``."""
        return self.model(x)

    def compute_loss(self, batch: Batch, *, regularize: bool = True) -> Tensor:
        """This rank's loss on ``batch``: objective + ``lamb`` * regulariser (0-dim)."""
        record = regularize and self.lamb > 0
        model_fn = RecordingModel(self.model, record)
        loss = self.objective.loss(model_fn, batch)
        if record:
            if model_fn.activations is None:
                raise RuntimeError(
                    f"{type(self.objective).__name__}.loss never called the model, so the "
                    "regulariser has no activations"
                )
            reg = self.model.regularization(model_fn.activations, self.lamb_l1, self.lamb_entropy)
            loss = loss + self.lamb * reg
        return loss

    def synced_loss(self, batch: Batch, *, regularize: bool = True) -> tuple[Tensor, Tensor]:
        """``(local loss with graph, loss averaged over ranks, detached)``; fails together."""
        try:
            loss = self.compute_loss(batch, regularize=regularize)
        except Exception as err:  # re-raised on this rank after telling the others
            _synced(None, err)
            raise  # pragma: no cover - _synced always raises here
        return loss, _synced(loss, None)

    # ------------------------------------------------------------------ training
    def training_step(self, batch: Batch, batch_idx: int) -> Tensor | None:
        n = _batch_size(batch)
        if self.automatic_optimization:
            loss, mean = self.synced_loss(batch)
            self._record(mean, n)
            return loss
        opt = self.optimizers()
        # only without DDP: ranks would not agree on the moment to cut (the callback stops
        # them together between steps instead)
        cut = math.isfinite(self.deadline) and rank_and_world()[1] == 1
        params = [p for p in self.model.parameters() if p.requires_grad]
        best: list[Any] = [math.inf, None]  # lowest loss evaluated in this step, its parameters

        def closure() -> Tensor:
            if cut and best[1] is not None and time.time() >= self.deadline:
                raise _DeadlinePassed
            opt.zero_grad()
            loss, mean = self.synced_loss(batch)
            self.manual_backward(loss)
            if cut and float(mean) < best[0]:
                best[0], best[1] = float(mean), [p.detach().clone() for p in params]
            return mean

        try:
            start = opt.step(closure=closure)
        except _DeadlinePassed:  # keep the best point of the step; end training now
            with torch.no_grad():
                for p, v in zip(params, best[1]):
                    p.copy_(v)
            self.stop_now = True
            self.trainer.should_stop = True
            return None
        self._record(start.detach() if isinstance(start, Tensor) else torch.tensor(start), n)
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
            name, mean, prog_bar=True, on_step=False, on_epoch=True, batch_size=_batch_size(batch)
        )
        return mean

    def validation_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """Objective loss (no regulariser) as ``val_loss``; autograd enabled."""
        return self._evaluate(batch, "val_loss")

    def test_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """Objective loss (no regulariser) as ``test_loss``; autograd enabled."""
        return self._evaluate(batch, "test_loss")

    # ------------------------------------------------------------------ optimisers
    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = self.trainable_parameters()
        if not params:
            raise ValueError(f"{type(self.model).__name__} has no trainable parameters")
        if self.optimizer_name == "lbfgs":
            return torch.optim.LBFGS(params, lr=self.lr, **self.lbfgs_options)
        if not self.param_lr:
            return torch.optim.Adam(params, lr=self.lr, **self.adam_options)
        groups: dict[float, list[nn.Parameter]] = {}
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                rate = next((v for k, v in self.param_lr.items() if name.endswith(k)), self.lr)
                groups.setdefault(rate, []).append(p)
        return torch.optim.Adam([{"params": ps, "lr": r} for r, ps in groups.items()], lr=self.lr,
                                **self.adam_options)  # fmt: skip


def _batch_size(batch: Batch) -> int:
    return int(next(iter(batch.values())).shape[0])
