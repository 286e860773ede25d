"""Training engine: physkan models trained full-batch with PyTorch Lightning.

* :mod:`~physkan.train.objectives` -- what a batch means and which loss to minimise
  (:data:`OBJECTIVES` registry keyed by problem type);
* :mod:`~physkan.train.module` -- :class:`PhyskanModule` (LBFGS with a DDP-safe closure, or Adam);
* :mod:`~physkan.train.callbacks` -- grid updates, named checkpoints, early stop, progress bar;
* :mod:`~physkan.train.data` -- full-batch loaders that shard themselves under DDP;
* :mod:`~physkan.train.trainer` -- :func:`make_trainer` and the Lightning engine's ``fit``;
* :mod:`~physkan.train.plain` -- the one-call :func:`fit`: small single-process CPU LBFGS
  fits run in a plain loop with the same results (:mod:`~physkan.train.core` is the loss,
  optimiser and LBFGS step both engines share), everything else on Lightning.
"""

from physkan._lazy import lazy_exports

#: public name -> submodule; imported on first use (PEP 562), so ``physkan.train.objectives``
#: (the plugin host registers objectives through it) does not import Lightning.
_LAZY = {
    "EarlyStopOnLoss": "callbacks",
    "GridUpdate": "callbacks",
    "NamedCheckpoints": "callbacks",
    "ParameterSyncCheck": "callbacks",
    "progress_bar": "callbacks",
    "update_grid_in_place": "callbacks",
    "FullBatchDataset": "data",
    "full_batch_loader": "data",
    "PhyskanModule": "module",
    "RecordingModel": "module",
    "RemoteLossError": "module",
    "DATASET_KEYS": "objectives",
    "OBJECTIVES": "objectives",
    "ConservationObjective": "objectives",
    "LagrangianObjective": "objectives",
    "MetricObjective": "objectives",
    "Objective": "objectives",
    "RegressionObjective": "objectives",
    "dataset_batch": "objectives",
    "make_objective": "objectives",
    "register_objective": "objectives",
    "FitResult": "core",
    "fit": "plain",
    "make_trainer": "trainer",
    "silence_lightning": "trainer",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


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
