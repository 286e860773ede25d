"""The Lightning-free core of a training step: loss, optimiser, one LBFGS step.

:class:`TrainingCore` is mixed into both engines: the Lightning module
(:class:`~physkan.train.module.PhyskanModule`, DDP/GPU/``physkan train``) and the plain loop
of :mod:`physkan.train.plain` (small single-process CPU fits, no Lightning import). Both run
the very same loss, optimiser and LBFGS closure, so their results agree bit for bit.

``loss = objective.loss(model_fn, batch) + lamb * model.regularization(acts, lamb_l1,
lamb_entropy)``, where ``model_fn`` is a :class:`RecordingModel` (see its docstring).
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from physkan.errors import PhyskanError
from physkan.train.data import rank_and_world
from physkan.train.lbfgs import LBFGS
from physkan.train.objectives import Batch, Objective

__all__ = [
    "DeadlinePassed",
    "FitResult",
    "RecordingModel",
    "RemoteLossError",
    "TrainingCore",
    "batch_size",
    "cast_tensors",
    "grid_update_due",
    "seed_all",
    "synced",
    "update_grid_in_place",
]


@dataclass
class FitResult:
    """Outcome of :func:`physkan.train.fit` (either engine).

    Attributes:
        model: the trained model (CPU, original dtype; the very object passed to ``fit``).
        history: training loss per step (mean over ranks; for LBFGS the loss at the start
            of each step). Shorter than ``steps`` after an early stop.
        final_loss: training loss (objective + regulariser) of the returned weights, on the
            full training set in the training precision.
        seconds: wall time of ``Trainer.fit`` (including process start-up under DDP).
        metrics: the Trainer's final scalar metrics (``val_loss``,
            ``physkan/param_divergence`` = max parameter difference between ranks, ...).
    """

    model: nn.Module
    history: list[float]
    final_loss: float
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)


def cast_tensors(tensors: Mapping[str, Tensor], dtype: torch.dtype) -> dict[str, Tensor]:
    """The floating tensors of ``tensors`` cast to ``dtype`` (others as they are)."""
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in tensors.items()}


def seed_all(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (as ``pl.seed_everything``)."""
    os.environ["PL_GLOBAL_SEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PL_SEED_WORKERS"] = "0"


def grid_update_due(step: int, every: int, until: int | None) -> bool:
    """Whether the grids are updated before step ``step`` (every ``every`` below ``until``)."""
    return step % every == 0 and (until is None or step < until)


def _set_tensor(model: nn.Module, name: str, value: Tensor, *, buffer: bool) -> None:
    owner_name, _, leaf = name.rpartition(".")
    owner = model.get_submodule(owner_name) if owner_name else model
    if buffer:
        owner._buffers[leaf] = value
    else:
        owner._parameters[leaf] = value  # type: ignore[assignment]


@torch.no_grad()
def update_grid_in_place(model: nn.Module, samples: Tensor) -> None:
    """``model.update_grid(samples)`` keeping every parameter and buffer *object*.

    ``KANLayer.update_grid`` installs new ``coef`` parameters and ``grid`` buffers; this
    copies the new values into the old tensors and puts those back, so optimisers and DDP
    (which hold references to the parameters) keep working.

    Args:
        model: a network with ``update_grid(x)``, e.g. a KAN.
        samples: model inputs ``(N, n_in)``.

    Raises:
        RuntimeError: when ``update_grid`` changed a tensor's shape (use ``refine`` between
            fits, not during one).
    """
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    model.update_grid(samples)
    for table, current, is_buffer in (
        (params, model.named_parameters(), False),
        (buffers, model.named_buffers(), True),
    ):
        for name, new in list(current):
            old = table.get(name)
            if old is None or old is new:
                continue
            if old.shape != new.shape:
                raise RuntimeError(
                    f"update_grid changed the shape of {name} from {tuple(old.shape)} to "
                    f"{tuple(new.shape)}; it cannot run inside a fit"
                )
            old.copy_(new)
            _set_tensor(model, name, old, buffer=is_buffer)


class RemoteLossError(PhyskanError, RuntimeError):
    """Another DDP rank failed to compute its loss; this rank stops with it."""


class DeadlinePassed(PhyskanError):
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


def synced(loss: Tensor | None, error: BaseException | None) -> Tensor:
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


def batch_size(batch: Batch) -> int:
    """Rows of a batch (every tensor has the same first dimension)."""
    return int(next(iter(batch.values())).shape[0])


class TrainingCore:
    """Loss, optimiser and LBFGS step shared by the Lightning module and the plain loop.

    A mixin for an ``nn.Module`` subclass; :meth:`setup_training` stores the options (see
    :class:`~physkan.train.module.PhyskanModule` for their meaning) and validates them.
    """

    model: nn.Module
    objective: Objective

    def setup_training(
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
        """Store and validate the training options (raises ``ValueError``/``TypeError``)."""
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
        self.lamb, self.lamb_l1, self.lamb_entropy = float(lamb), float(lamb_l1), float(lamb_entropy)
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
        self.history: list[float] = []
        #: absolute ``time.time()`` deadline; in one process an LBFGS step is cut inside at
        #: the deadline, keeping the best parameters it evaluated
        self.deadline = math.inf

    @property
    def last_loss(self) -> float:
        """The latest entry of ``history`` (``nan`` before the first step)."""
        return self.history[-1] if self.history else float("nan")

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
            synced(None, err)
            raise  # pragma: no cover - synced always raises here
        return loss, synced(loss, None)

    def lbfgs_step(self, opt: Any, batch: Batch, backward: Callable[[Tensor], None]) -> Tensor | None:
        """One ``opt.step(closure)``; the loss at the start of the step, or ``None`` when the
        deadline cut the step (the best parameters it evaluated are restored then).

        The cut happens only in one process: DDP ranks would not agree on the moment.
        """
        cut = math.isfinite(self.deadline) and rank_and_world()[1] == 1
        params = [p for p in self.model.parameters() if p.requires_grad]
        best: list[Any] = [math.inf, None]  # lowest loss evaluated in this step, its parameters

        def closure() -> Tensor:
            if cut and best[1] is not None and time.time() >= self.deadline:
                raise DeadlinePassed
            opt.zero_grad()
            loss, mean = self.synced_loss(batch)
            backward(loss)
            if cut and float(mean) < best[0]:
                best[0], best[1] = float(mean), [p.detach().clone() for p in params]
            return mean

        try:
            start = opt.step(closure=closure)
        except DeadlinePassed:  # keep the best point of the step
            with torch.no_grad():
                for p, v in zip(params, best[1]):
                    p.copy_(v)
            return None
        return start.detach() if isinstance(start, Tensor) else torch.tensor(start)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The model's parameters with ``requires_grad``."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def configure_optimizers(self, *, standalone: bool = False) -> Any:
        """LBFGS, or Adam (with per-suffix learning rates from ``param_lr``).

        ``standalone=True`` (the plain loop) gives LBFGS as :class:`physkan.train.lbfgs.LBFGS`:
        the same iterates as ``torch.optim.LBFGS`` without importing ``torch._dynamo`` (~2 s).
        """
        params = self.trainable_parameters()
        if not params:
            raise ValueError(f"{type(self.model).__name__} has no trainable parameters")
        if self.optimizer_name == "lbfgs" and standalone:
            return LBFGS(params, lr=self.lr, **self.lbfgs_options)
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
