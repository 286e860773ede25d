"""``physkan.train.fit``: a plain LBFGS loop for small single-process CPU fits, else Lightning.

Lightning is the training engine (DDP, GPUs, ``physkan train``, progress bars, validation,
callbacks), but importing it costs seconds (torchmetrics, ``torch._dynamo``) and a Trainer
is set up and torn down per fit, while discovery makes many tiny full-batch LBFGS fits on
the CPU. :func:`fit` therefore runs such a fit in a plain loop (:func:`plain_fit`) that
uses the very same loss and LBFGS closure (:class:`~physkan.train.core.TrainingCore`) and
the same optimiser algorithm (:class:`physkan.train.lbfgs.LBFGS`: ``torch.optim.LBFGS``'s
steps without its ~2 s ``torch._dynamo`` import),
seeds the same generators, updates grids, stops early and at the time budget's deadline at
the same steps, runs float64 steps under the same default dtype and draws the random
number a ``DataLoader`` draws: the results (parameters, history, final loss, the global
random state afterwards) are those of the Lightning engine bit for bit
(``tests/test_train_plain.py``).

The plain loop is used when the fit asks for nothing only Lightning offers: ``optimizer``
LBFGS, CPU, one device, strategy ``"auto"``, no validation set, no extra callbacks, no
progress bar, no ``default_root_dir``, precision 64 or 32, outside a DDP process group.
``PHYSKAN_TRAIN_ENGINE=lightning`` forces Lightning (``=plain`` forbids nothing: ineligible
fits still go to Lightning).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import Tensor, nn

from physkan.budget import current_budget
from physkan.train.core import (
    FitResult,
    TrainingCore,
    cast_tensors,
    grid_update_due,
    seed_all,
    update_grid_in_place,
)
from physkan.train.data import rank_and_world
from physkan.train.objectives import Objective

__all__ = ["ENGINE_ENV", "fit", "plain_eligible", "plain_fit"]

#: environment variable: ``lightning`` makes every fit use the Lightning engine.
ENGINE_ENV = "PHYSKAN_TRAIN_ENGINE"
#: ``divergence`` metric key of :class:`~physkan.train.callbacks.ParameterSyncCheck`.
_DIVERGENCE_KEY = "physkan/param_divergence"
_DTYPES = {64: torch.float64, "64": torch.float64, "64-true": torch.float64,
           32: torch.float32, "32": torch.float32, "32-true": torch.float32}  # fmt: skip


class _Core(TrainingCore, nn.Module):
    """The loss/optimiser core as a bare module (holds the model as a submodule)."""

    def __init__(self, model: nn.Module, objective: Objective, **options: Any) -> None:
        super().__init__()
        self.setup_training(model, objective, **options)


@contextmanager
def _default_dtype(dtype: torch.dtype):
    """``torch.set_default_dtype(dtype)`` inside (Lightning's ``"64-true"`` step context)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def plain_eligible(*, optimizer: str, val: Any, callbacks: Iterable[Any], accelerator: str, devices: Any,
                   strategy: Any, precision: Any, progress: bool, default_root_dir: Any) -> bool:  # fmt: skip
    """Whether :func:`fit` may run these options in the plain loop (see the module doc)."""
    return (
        os.environ.get(ENGINE_ENV, "").lower() != "lightning"
        and str(optimizer).lower() == "lbfgs"
        and val is None
        and not list(callbacks)
        and accelerator == "cpu"
        and devices in (1, "1")
        and strategy == "auto"
        and precision in _DTYPES
        and not progress
        and default_root_dir is None
        and rank_and_world()[1] == 1
    )


def plain_fit(
    model: nn.Module,
    objective: Objective,
    train: Mapping[str, Tensor],
    *,
    steps: int = 200,
    grid_update_every: int | None = None,
    grid_update_until: int | None = None,
    stop_loss: float | None = None,
    precision: Any = 64,
    seed: int = 0,
    val_every: int = 10,
    **options: Any,
) -> FitResult:
    """Train ``model`` full-batch with LBFGS in one process, without Lightning.

    Args:
        model, objective, train, steps, grid_update_every, grid_update_until, stop_loss,
            precision, seed: as :func:`physkan.train.trainer.fit` (``val_every`` is
            accepted and unused: there is no validation set).
        options: :class:`~physkan.train.core.TrainingCore` options (``lr``, ``lamb``,
            ``max_iter``, ``lbfgs_history`` ...; ``optimizer`` must be ``"lbfgs"``).

    Returns:
        :class:`FitResult`; ``seconds`` is the loop's wall time, ``metrics`` holds
        ``train_loss`` (the last step's) and the parameter divergence (0, one process).
    """
    del val_every
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    seed_all(seed)
    first = next(iter(model.parameters()), None)
    orig_dtype = first.dtype if first is not None else torch.get_default_dtype()
    dtype = _DTYPES[precision]
    model.to(dtype)
    batch = cast_tensors(train, dtype)
    core = _Core(model, objective, **options)
    if core.optimizer_name != "lbfgs":
        raise ValueError("plain_fit runs LBFGS only; Adam fits go through Lightning")
    budget = current_budget()
    core.deadline = budget.deadline
    opt = core.configure_optimizers(standalone=True)  # train/eval mode left as it is (as Lightning)
    torch.empty((), dtype=torch.int64).random_()  # the seed a DataLoader iterator draws
    start = time.perf_counter()
    with _default_dtype(dtype):
        for step in range(steps):
            past = math.isfinite(core.deadline) and time.time() >= core.deadline
            if grid_update_every is not None and grid_update_due(step, grid_update_every, grid_update_until):
                update_grid_in_place(model, objective.grid_samples(batch).detach())
                opt.state.clear()  # the parametrisation changed: LBFGS curvature is stale
            if past:
                break
            loss = core.lbfgs_step(opt, batch, lambda value: value.backward())
            if loss is None:  # the deadline cut the step
                break
            core.history.append(float(loss))
            if stop_loss is not None and float(loss) <= stop_loss:
                break
    seconds = time.perf_counter() - start
    if budget.expired():
        budget.mark_exhausted()
    with torch.enable_grad():
        final_loss = float(core.compute_loss(batch).detach())
    model.to(orig_dtype)
    metrics = {"train_loss": core.history[-1]} if core.history else {}
    metrics[_DIVERGENCE_KEY] = 0.0
    return FitResult(model=model, history=list(core.history), final_loss=final_loss, seconds=seconds,
                     metrics=metrics)  # fmt: skip


def fit(
    model: nn.Module,
    objective: Objective,
    train: Mapping[str, Tensor],
    *,
    val: Mapping[str, Tensor] | None = None,
    optimizer: Literal["lbfgs", "adam"] = "lbfgs",
    callbacks: Iterable[Any] = (),
    accelerator: str = "cpu",
    devices: int | str | list[int] = 1,
    strategy: str | Any = "auto",
    precision: Any = 64,
    progress: bool = False,
    default_root_dir: str | None = None,
    **options: Any,
) -> FitResult:
    """Train ``model`` full-batch on ``train`` and return it with its loss history.

    The arguments are those of :func:`physkan.train.trainer.fit` (the Lightning engine),
    which runs the fit unless :func:`plain_eligible` allows the plain loop (same results).
    """
    callbacks = list(callbacks)
    common = dict(optimizer=optimizer, val=val, callbacks=callbacks, accelerator=accelerator, devices=devices,
                  strategy=strategy, precision=precision, progress=progress, default_root_dir=default_root_dir)  # fmt: skip
    if plain_eligible(**common):
        return plain_fit(model, objective, train, precision=precision, optimizer=optimizer, **options)
    from physkan.train.trainer import fit as lightning_fit

    return lightning_fit(model, objective, train, **common, **options)
