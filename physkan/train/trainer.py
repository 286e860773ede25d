"""Trainer factory and the one-call :func:`fit` API.

>>> from physkan.kan import KAN
>>> from physkan.train import RegressionObjective, fit
>>> res = fit(KAN([2, 5, 1]), RegressionObjective(), {"x": x, "y": y}, steps=50)
>>> res.final_loss, res.history[:3], res.seconds

Conventions (see also :mod:`physkan.train.module` and :mod:`physkan.train.data`):

* full batch: each step sees every training sample (each DDP rank its shard); one Lightning
  epoch is the whole run, so the progress bar counts steps;
* one step is one optimiser step: for LBFGS one ``LBFGS.step(closure)`` with ``max_iter``
  (default 20) inner iterations -- ``steps=50`` is up to 1000 LBFGS iterations;
* ``precision=64`` trains in float64 (model and data are cast, Lightning runs
  ``"64-true"``); the returned model is on the CPU in the dtype it came in with.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from torch import Tensor, nn

from physkan.budget import current_budget
from physkan.train.callbacks import (
    DIVERGENCE_KEY,
    EarlyStopOnLoss,
    GridUpdate,
    ParameterSyncCheck,
    StopAtDeadline,
    progress_bar,
)
from physkan.train.core import FitResult, cast_tensors, seed_all
from physkan.train.data import full_batch_loader
from physkan.train.module import HISTORY_KEY, PhyskanModule
from physkan.train.objectives import Objective

__all__ = ["FitResult", "fit", "make_trainer", "resolve_precision", "silence_lightning"]

Precision = Literal[32, 64, "32", "64", "32-true", "64-true"] | str

# DDP strategies map to their find_unused_parameters=True variants: a KAN has parameters
# that a forward pass may not touch (e.g. the affine of symbolic edges while none is symbolic).
_STRATEGY_ALIASES = {
    "ddp": "ddp_find_unused_parameters_true",
    "ddp_spawn": "ddp_spawn_find_unused_parameters_true",
    "ddp_fork": "ddp_fork_find_unused_parameters_true",
    "ddp_notebook": "ddp_notebook_find_unused_parameters_true",
}
_QUIET_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric")
_QUIET_WARNINGS = (
    r".*does not have many workers.*",
    r".*GPU available but not used.*",
    r".*Trying to infer the `batch_size`.*",
    r".*is smaller than the logging interval.*",
    r".*`training_step` returned `None`.*",
    r".*LeafSpec.*is deprecated.*",
    r".*defined a `validation_step` but have no `val_dataloader`.*",  # torch >= 2.10 vs Lightning's pytree helper
)


def silence_lightning() -> None:
    """Drop Lightning's info banners ("GPU available", "distributed init", ...) and its
    warnings about dataloader workers. Process-wide; also applied in DDP worker processes."""
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


class _Quiet(Callback):
    """Re-applies :func:`silence_lightning` in spawned worker processes: on unpickling
    (before the worker initialises the process group) and at setup."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _quiet_callback, ()

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        silence_lightning()


def _quiet_callback() -> _Quiet:
    """Unpickling hook of :class:`_Quiet` (runs in the worker before it logs anything)."""
    silence_lightning()
    return _Quiet()


def _gloo_group_alive() -> bool:
    """Whether this process holds an initialised default process group on the gloo backend."""
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized() and dist.get_backend() == "gloo"


def _destroy_gloo_group() -> None:
    """Destroy the default gloo process group if it is still alive (idempotent)."""
    if _gloo_group_alive():
        torch.distributed.destroy_process_group()


class _ReleaseProcessGroup(Callback):
    """Destroys the gloo process group of a DDP run before the process holding it exits.

    Lightning destroys only NCCL groups (at exit). A gloo group left alive into interpreter
    shutdown can abort its process while gloo's C++ threads still hold work ("terminate called
    without an active exception", SIGABRT): seen, rarely, in ``ddp_spawn`` CPU workers, where it
    fails a fit that had finished. In a ``ddp_spawn``/``ddp_fork`` worker the group is destroyed
    at ``teardown``: the worker is done with it (Lightning hands the results back through a
    queue and a file, no collective). Where the group outlives the fit (``strategy="ddp"``,
    whose rank 0 is the caller's process) it is destroyed at exit instead.
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if _gloo_group_alive():
            atexit.unregister(_destroy_gloo_group)  # once per process, however many fits
            atexit.register(_destroy_gloo_group)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        in_worker = multiprocessing.parent_process() is not None
        launched_here = getattr(trainer.strategy, "_start_method", "popen") != "popen"
        if in_worker and launched_here:
            _destroy_gloo_group()


def resolve_precision(precision: Precision) -> str:
    """Lightning precision string: 64 / "64" -> "64-true", 32 / "32" -> "32-true"."""
    if precision in (64, "64", "64-true"):
        return "64-true"
    if precision in (32, "32", "32-true"):
        return "32-true"
    return str(precision)


def make_trainer(
    *,
    max_steps: int,
    max_epochs: int | None = None,
    accelerator: str = "cpu",
    devices: int | str | list[int] = 1,
    strategy: str | Any = "auto",
    precision: Precision = 64,
    callbacks: Iterable[Callback] = (),
    progress: bool = True,
    log_every_n_steps: int = 1,
    val_every: int | None = None,
    default_root_dir: str | None = None,
    use_distributed_sampler: bool = False,
    quiet: bool = True,
    **trainer_kwargs: Any,
) -> pl.Trainer:
    """A quiet ``pl.Trainer`` for physkan: no checkpoints, no logger, ``inference_mode=False``.

    Args:
        max_steps: optimiser steps to run.
        max_epochs: epochs to run (``None``: no limit but ``max_steps``); :func:`fit` passes 1
            because its loader's single epoch holds every step.
        accelerator, devices: as Lightning (``"cpu"``, ``"gpu"``, ...).
        strategy: as Lightning; ``"ddp"``/``"ddp_spawn"``/... become their
            ``find_unused_parameters_true`` variants.
        precision: 64 (float64), 32 or any Lightning precision string.
        callbacks: extra callbacks.
        progress: show a rich progress bar.
        log_every_n_steps: Lightning's logging period.
        val_every: run validation every this many training batches (with the full-batch
            loaders one batch is one step); ``None``: once per epoch.
        default_root_dir: Lightning's working directory (``None``: the cwd).
        use_distributed_sampler: let Lightning inject a ``DistributedSampler``; off because
            :func:`~physkan.train.data.full_batch_loader` shards itself.
        quiet: apply :func:`silence_lightning`.
        trainer_kwargs: passed on to ``pl.Trainer``.
    """
    if quiet:
        silence_lightning()
    cbs = list(callbacks)
    if quiet:
        cbs.append(_Quiet())
    cbs.append(_ReleaseProcessGroup())
    bar = progress_bar(progress)
    if bar is not None:
        cbs.append(bar)
    if isinstance(strategy, str):
        strategy = _STRATEGY_ALIASES.get(strategy, strategy)
    kwargs: dict[str, Any] = dict(
        max_steps=max_steps,
        max_epochs=-1 if max_epochs is None else max_epochs,
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        precision=resolve_precision(precision),
        callbacks=cbs,
        enable_progress_bar=progress,
        log_every_n_steps=log_every_n_steps,
        default_root_dir=default_root_dir,
        inference_mode=False,
        enable_checkpointing=False,
        logger=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=use_distributed_sampler,
    )
    if val_every is not None:
        kwargs["val_check_interval"] = int(val_every)
    kwargs.update(trainer_kwargs)
    return pl.Trainer(**kwargs)


def fit(
    model: nn.Module,
    objective: Objective,
    train: Mapping[str, Tensor],
    *,
    val: Mapping[str, Tensor] | None = None,
    steps: int = 200,
    optimizer: Literal["lbfgs", "adam"] = "lbfgs",
    lr: float | None = None,
    lamb: float = 0.0,
    lamb_l1: float = 1.0,
    lamb_entropy: float = 1.0,
    max_iter: int = 20,
    grid_update_every: int | None = None,
    grid_update_until: int | None = None,
    stop_loss: float | None = None,
    val_every: int = 10,
    callbacks: Iterable[Callback] = (),
    accelerator: str = "cpu",
    devices: int | str | list[int] = 1,
    strategy: str | Any = "auto",
    precision: Precision = 64,
    progress: bool = False,
    seed: int = 0,
    default_root_dir: str | None = None,
    **module_kwargs: Any,
) -> FitResult:
    """Train ``model`` full-batch on ``train`` and return it with its loss history.

    Args:
        model: network to train (trained in place; under ``ddp_spawn`` the trained weights
            are loaded back into it).
        objective: e.g. ``RegressionObjective()``; ``train``/``val`` hold its batch keys.
        train, val: ``name -> (N, ...)`` tensors (same ``N`` within each).
        steps: optimiser steps (LBFGS: outer steps of ``max_iter`` iterations).
        optimizer, lr, lamb, lamb_l1, lamb_entropy, max_iter: see :class:`PhyskanModule`.
        grid_update_every, grid_update_until: :class:`GridUpdate` (off when ``None``).
        stop_loss: stop once the training loss is ``<=`` this (:class:`EarlyStopOnLoss`).
        val_every: validation period in steps (when ``val`` is given).
        callbacks: extra callbacks (e.g. :class:`NamedCheckpoints`).
        accelerator, devices, strategy, precision, progress, default_root_dir: see
            :func:`make_trainer` (``default_root_dir=None``: a temporary directory).
        seed: global seed (``pl.seed_everything``).
        module_kwargs: other :class:`PhyskanModule` options (``lbfgs_history``, ...).

    Time budget: training stops after the step during which the deadline of
    :func:`physkan.budget.current_budget` passed (:class:`StopAtDeadline`, also under
    ``ddp_spawn``); the budget is then marked exhausted. Past the deadline no step runs.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    seed_all(seed)
    first = next(iter(model.parameters()), None)
    orig_dtype = first.dtype if first is not None else torch.get_default_dtype()
    prec = resolve_precision(precision)
    dtype = {"64-true": torch.float64, "32-true": torch.float32}.get(prec)
    if dtype is not None:
        model.to(dtype)
        train = cast_tensors(train, dtype)
        val = cast_tensors(val, dtype) if val is not None else None
    module = PhyskanModule(
        model,
        objective,
        optimizer=optimizer,
        lr=lr,
        lamb=lamb,
        lamb_l1=lamb_l1,
        lamb_entropy=lamb_entropy,
        max_iter=max_iter,
        **module_kwargs,
    )
    budget = current_budget()
    cbs: list[Callback] = [ParameterSyncCheck(), StopAtDeadline(budget.deadline)]
    if grid_update_every is not None:
        cbs.append(GridUpdate(grid_update_every, grid_update_until))
    if stop_loss is not None:
        cbs.append(EarlyStopOnLoss(stop_loss))
    cbs.extend(callbacks)
    with tempfile.TemporaryDirectory(prefix="physkan-fit-") as tmp:
        trainer = make_trainer(
            max_steps=steps,
            max_epochs=1,
            accelerator=accelerator,
            devices=devices,
            strategy=strategy,
            precision=prec,
            callbacks=cbs,
            progress=progress,
            val_every=min(val_every, steps) if val is not None else None,
            default_root_dir=default_root_dir or tmp,
            limit_val_batches=1.0 if val is not None else 0,
        )
        train_loader = full_batch_loader(train, steps)
        val_loader = full_batch_loader(val, 1) if val is not None else None
        start = time.perf_counter()
        trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader)
        seconds = time.perf_counter() - start
    if budget.expired():  # the deadline passed during (or before) training: it was cut short
        budget.mark_exhausted()
    metrics = dict(trainer.callback_metrics)
    hist = metrics.pop(HISTORY_KEY, None)
    history = [float(v) for v in hist] if hist is not None else list(module.history)
    model.cpu()
    with torch.enable_grad():
        final_loss = float(module.compute_loss({k: v.cpu() for k, v in train.items()}).detach())
    if dtype is not None:
        model.to(orig_dtype)
    scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, Tensor) and v.numel() == 1}
    scalars.setdefault(DIVERGENCE_KEY, 0.0)
    return FitResult(
        model=model, history=history, final_loss=final_loss, seconds=seconds, metrics=scalars
    )
