"""Training objectives: what a batch of tensors means and which loss a model minimises on it.

An objective is any object with two methods (see :class:`Objective`):

* ``loss(model, batch) -> Tensor``: a 0-dim loss. ``model`` is a *callable*
  ``(N, n_in) -> (N, n_out)``; the training module passes a thin wrapper around the network
  (not the network itself) so that it can record the activations of the call for the
  sparsity regulariser. Objectives therefore only ever *call* ``model``; they may call it
  on inputs that require grad (autograd-based physics losses).
* ``grid_samples(batch) -> Tensor``: the model inputs ``(N, n_in)`` on which KAN grids are
  adapted by :class:`~physkan.train.callbacks.GridUpdate`.

Batches are plain ``dict[str, Tensor]`` whose rows are samples; every tensor of a batch has
the same first dimension (the training loader slices rows, see :mod:`physkan.train.data`).

Built-ins, registered in :data:`OBJECTIVES` under their problem type:

============== ===================== ==========================================
type           batch keys            loss
============== ===================== ==========================================
regression     ``x (N, d)``,         ``mean((model(x) - y)^2)``
               ``y (N, m)``
lagrangian     ``state (N, 2n)``,    :func:`~physkan.physics.euler_lagrange_loss`
               ``qddot (N, n)``
hamiltonian    ``z (N, 2n)``,        :func:`~physkan.physics.losses.symplectic_loss`
               ``zdot (N, 2n)``
conservation   ``z (N, d)``,         :func:`~physkan.physics.conservation_loss`
               ``f (N, d)``          (the model outputs the ``m`` quantities)
metric         ``r (N, 1)``          :func:`~physkan.physics.metric_flatness_loss`
============== ===================== ==========================================

Plugins add types with :func:`register_objective`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import Tensor

from physkan.physics.losses import (
    conservation_loss,
    euler_lagrange_loss,
    metric_flatness_loss,
    symplectic_loss,
)

__all__ = [
    "DATASET_KEYS",
    "HamiltonianObjective",
    "OBJECTIVES",
    "Batch",
    "ConservationObjective",
    "LagrangianObjective",
    "MetricObjective",
    "ModelFn",
    "Objective",
    "RegressionObjective",
    "dataset_batch",
    "make_objective",
    "register_objective",
]

Batch = Mapping[str, Tensor]
ModelFn = Callable[[Tensor], Tensor]


@runtime_checkable
class Objective(Protocol):
    """What :class:`~physkan.train.module.PhyskanModule` trains against."""

    def loss(self, model: ModelFn, batch: Batch) -> Tensor:
        """0-dim loss of ``model`` on ``batch`` (differentiable w.r.t. its parameters)."""
        ...

    def grid_samples(self, batch: Batch) -> Tensor:
        """Model inputs ``(N, n_in)`` of ``batch``, used to adapt the KAN grids."""
        ...


def _get(batch: Batch, key: str, owner: str) -> Tensor:
    try:
        return batch[key]
    except KeyError:
        raise KeyError(
            f"{owner}: the batch has no {key!r} tensor (keys: {sorted(batch)})"
        ) from None


@dataclass
class RegressionObjective:
    """Mean squared error ``mean((model(x) - y)^2)`` over samples and outputs.

    Batch: ``x (N, d)``, ``y (N, m)`` (or ``(N,)`` for ``m = 1``).
    """

    def loss(self, model: ModelFn, batch: Batch) -> Tensor:
        x, y = _get(batch, "x", "regression"), _get(batch, "y", "regression")
        pred = model(x)
        return torch.mean((pred - y.reshape(pred.shape).to(pred)) ** 2)

    def grid_samples(self, batch: Batch) -> Tensor:
        return _get(batch, "x", "regression")


@dataclass
class LagrangianObjective:
    """Euler-Lagrange residual: the model is a Lagrangian ``L(q, q_dot)``, ``(N, 2n) -> (N, 1)``.

    Batch: ``state (N, 2n) = [q, q_dot]``, ``qddot (N, n)`` observed accelerations.

    Args:
        ridge: Hessian ridge ``d2L/dq_dot2 + ridge * I`` (keeps a near-degenerate model
            solvable early in training; 0 recovers the exact equations).
        cond_max: raise :class:`~physkan.physics.SingularHessianError` above this Hessian
            condition number (``None``: never; the loss may then become non-finite).
            Under DDP an error on one rank is raised on every rank (no hang).
    """

    ridge: float = 0.0
    cond_max: float | None = 1e8

    def loss(self, model: ModelFn, batch: Batch) -> Tensor:
        state = _get(batch, "state", "lagrangian")
        qddot = _get(batch, "qddot", "lagrangian")
        return euler_lagrange_loss(model, state, qddot, ridge=self.ridge, cond_max=self.cond_max)

    def grid_samples(self, batch: Batch) -> Tensor:
        return _get(batch, "state", "lagrangian")


@dataclass
class HamiltonianObjective:
    """Symplectic loss (q_dot = dH/dp, p_dot = -dH/dq): the model is H ``(N, 2n) -> (N, 1)``.

    Batch: ``z (N, 2n) = [q, p]``, ``zdot (N, 2n)`` observed time derivatives.
    """

    def loss(self, model: ModelFn, batch: Batch) -> Tensor:
        return symplectic_loss(model, _get(batch, "z", "hamiltonian"), _get(batch, "zdot", "hamiltonian"))

    def grid_samples(self, batch: Batch) -> Tensor:
        return _get(batch, "z", "hamiltonian")


@dataclass
class ConservationObjective:
    """Conserved quantities of ``dz/dt = f(z)``: the model maps ``(N, d) -> (N, m)``.

    Batch: ``z (N, d)`` states, ``f (N, d)`` their time derivatives. The fields are the
    keyword arguments of :func:`~physkan.physics.conservation_loss`.
    """

    independence_weight: float = 1.0
    nontrivial_weight: float = 1.0
    independence: Literal["gram", "logdet"] = "gram"
    normalize_f: bool = True
    eps: float = 1e-8

    def loss(self, model: ModelFn, batch: Batch) -> Tensor:
        z, f = _get(batch, "z", "conservation"), _get(batch, "f", "conservation")
        return conservation_loss(
            model,
            z,
            f,
            independence_weight=self.independence_weight,
            nontrivial_weight=self.nontrivial_weight,
            independence=self.independence,
            normalize_f=self.normalize_f,
            eps=self.eps,
        )

    def grid_samples(self, batch: Batch) -> Tensor:
        return _get(batch, "z", "conservation")


@dataclass
class MetricObjective:
    """Schwarzschild flatness: the model is ``Delta t(r)`` (or ``Delta t'(r)``), ``(N, 1) -> (N, 1)``.

    Batch: ``r (N, 1)`` (or ``(N,)``) radii outside the horizon ``2 * mass``.

    Args:
        mass: black-hole mass ``M`` (``G = c = 1``); 0.5 puts the horizon at ``r = 1``.
        derivative_given: the model outputs ``Delta t'(r)`` directly.
    """

    mass: float = 0.5
    derivative_given: bool = False

    def loss(self, model: ModelFn, batch: Batch) -> Tensor:
        r = _get(batch, "r", "metric")
        return metric_flatness_loss(
            model, r.reshape(-1, 1), self.mass, derivative_given=self.derivative_given
        )

    def grid_samples(self, batch: Batch) -> Tensor:
        return _get(batch, "r", "metric").reshape(-1, 1)


ObjectiveFactory = Callable[..., Objective]

#: problem type -> factory ``(**options) -> Objective``.
OBJECTIVES: dict[str, ObjectiveFactory] = {
    "regression": RegressionObjective,
    "lagrangian": LagrangianObjective,
    "hamiltonian": HamiltonianObjective,
    "conservation": ConservationObjective,
    "metric": MetricObjective,
}


#: problem type -> batch keys of a :class:`~physkan.problems.Dataset`'s ``x`` and ``y``
#: (``None``: ``y`` is not used, e.g. the metric problem's placeholder zeros).
DATASET_KEYS: dict[str, tuple[str, str | None]] = {
    "regression": ("x", "y"),
    "lagrangian": ("state", "qddot"),
    "hamiltonian": ("z", "zdot"),
    "conservation": ("z", "f"),
    "metric": ("r", None),
}


def register_objective(
    problem_type: str,
    factory: ObjectiveFactory,
    dataset_keys: tuple[str, str | None] = ("x", "y"),
) -> None:
    """Train problems of ``problem_type`` with ``factory(**options)`` (replaces any previous).

    ``dataset_keys`` names the batch entries that :func:`dataset_batch` fills with a
    dataset's ``x`` and ``y`` tensors.
    """
    if not callable(factory):
        raise TypeError(f"objective factory for {problem_type!r} must be callable, got {factory!r}")
    OBJECTIVES[problem_type] = factory
    DATASET_KEYS[problem_type] = dataset_keys


def dataset_batch(
    dataset: Any, split: str = "train", problem_type: str | None = None
) -> dict[str, Tensor]:
    """The batch of a :class:`~physkan.problems.Dataset` split for its objective.

    Args:
        dataset: has ``x_<split>``, ``y_<split>`` and ``meta["type"]``.
        split: ``"train"`` or ``"test"``.
        problem_type: overrides ``dataset.meta["type"]``.

    Returns:
        e.g. ``{"state": x_train (N, 2n), "qddot": y_train (N, n)}`` for a Lagrangian problem.
    """
    kind = problem_type or dataset.meta.get("type")
    if kind is None:
        raise ValueError("the dataset's meta has no 'type'; pass problem_type=")
    if kind not in DATASET_KEYS:
        raise KeyError(f"no dataset keys for problem type {kind!r}; use register_objective()")
    x_key, y_key = DATASET_KEYS[kind]
    batch = {x_key: getattr(dataset, f"x_{split}")}
    if y_key is not None:
        batch[y_key] = getattr(dataset, f"y_{split}")
    return batch


def make_objective(problem_type: str, **options: Any) -> Objective:
    """The objective registered for ``problem_type``, built with ``options``.

    Raises:
        KeyError: naming the registered types when ``problem_type`` is unknown.
    """
    factory = OBJECTIVES.get(problem_type)
    if factory is None:
        raise KeyError(
            f"no objective for problem type {problem_type!r} "
            f"(registered: {', '.join(sorted(OBJECTIVES))}); use register_objective()"
        )
    objective = factory(**options)
    if not isinstance(objective, Objective):
        raise TypeError(
            f"objective factory for {problem_type!r} returned {type(objective).__name__}, "
            "which lacks loss(model, batch) and grid_samples(batch)"
        )
    return objective
