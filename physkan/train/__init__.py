"""Training engine: physkan models trained full-batch with PyTorch Lightning.

* :mod:`~physkan.train.objectives` -- what a batch means and which loss to minimise
  (:data:`OBJECTIVES` registry keyed by problem type);
* :mod:`~physkan.train.module` -- :class:`PhyskanModule` (LBFGS with a DDP-safe closure, or Adam);
* :mod:`~physkan.train.callbacks` -- grid updates, named checkpoints, early stop, progress bar;
* :mod:`~physkan.train.data` -- full-batch loaders that shard themselves under DDP;
* :mod:`~physkan.train.trainer` -- :func:`make_trainer` and the one-call :func:`fit`.
"""

from physkan.train.callbacks import (
    EarlyStopOnLoss,
    GridUpdate,
    NamedCheckpoints,
    ParameterSyncCheck,
    progress_bar,
    update_grid_in_place,
)
from physkan.train.data import FullBatchDataset, full_batch_loader
from physkan.train.module import PhyskanModule, RecordingModel, RemoteLossError
from physkan.train.objectives import (
    DATASET_KEYS,
    OBJECTIVES,
    ConservationObjective,
    LagrangianObjective,
    MetricObjective,
    Objective,
    RegressionObjective,
    dataset_batch,
    make_objective,
    register_objective,
)
from physkan.train.trainer import FitResult, fit, make_trainer, silence_lightning

__all__ = [
    "DATASET_KEYS",
    "OBJECTIVES",
    "ConservationObjective",
    "EarlyStopOnLoss",
    "FitResult",
    "FullBatchDataset",
    "GridUpdate",
    "LagrangianObjective",
    "MetricObjective",
    "NamedCheckpoints",
    "Objective",
    "ParameterSyncCheck",
    "PhyskanModule",
    "RecordingModel",
    "RegressionObjective",
    "RemoteLossError",
    "dataset_batch",
    "fit",
    "full_batch_loader",
    "make_objective",
    "make_trainer",
    "progress_bar",
    "register_objective",
    "silence_lightning",
    "update_grid_in_place",
]
