"""Turn a :class:`ProblemSpec` into tensors: the :class:`Dataset` and its makers.

``make_dataset(spec)`` dispatches on ``spec.type`` through :data:`DATA_MAKERS`. This module
registers the ``regression`` maker; the physics types (``lagrangian``, ``conservation``,
``metric``) are registered by ``physkan.physics.data`` — which is imported lazily the first
time such a type is asked for — or by plugins via :func:`register_data_maker`.

Regression data are either sampled (uniform in ``[data].ranges``, ``torch.Generator``
seeded by ``[data].seed``; the train set is drawn first, then the test set, so a given seed
always gives the same points) or read from ``[data].file``. File rows are shuffled with
the seed and split into ``n_train`` + ``n_test`` rows; a file with fewer rows than that is
split 80/20 instead (meta ``split = "80/20"``). Noise, if any, is added to the training
targets only: ``y += noise * std(y) * N(0, 1)`` per output column.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from physkan.symbolic.parse import lambdify_arrays as lambdify

from .errors import ProblemError
from .spec import ProblemSpec
from .systems import RegressionSystem
from .tables import file_sha256, read_columns

__all__ = [
    "DATA_MAKERS",
    "MIN_FILE_ROWS",
    "Dataset",
    "add_noise",
    "make_dataset",
    "make_regression_dataset",
    "register_data_maker",
    "split_rows",
]

DataMaker = Callable[[ProblemSpec], "Dataset"]

#: a data file needs this many rows: two to train on (a line), one to test on.
MIN_FILE_ROWS = 3

#: problem type -> function building its Dataset.
DATA_MAKERS: dict[str, DataMaker] = {}

#: modules that register makers for built-in types when imported.
_LAZY_MAKERS = {
    "lagrangian": "physkan.problems.physics_makers",
    "conservation": "physkan.problems.physics_makers",
    "metric": "physkan.problems.physics_makers",
    "hamiltonian": "physkan.problems.hamiltonian",
}


@dataclass
class Dataset:
    """Train/test tensors of one problem (float64).

    Shapes: ``x_* (N, len(inputs))``, ``y_* (N, len(outputs))``. ``extras`` holds
    type-specific tensors (e.g. accelerations for a Lagrangian problem), ``meta`` the
    provenance (``source`` = ``"sampled"`` or ``"file"``, seed, noise, ranges, file + sha256).
    """

    inputs: list[str]
    outputs: list[str]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.ndim != 2 or x.shape[1] != len(self.inputs):
                raise ValueError(
                    f"x_{split} has shape {tuple(x.shape)}, expected (N, {len(self.inputs)}) "
                    f"for inputs {self.inputs}"
                )
            if y.ndim != 2 or y.shape != (x.shape[0], len(self.outputs)):
                raise ValueError(
                    f"y_{split} has shape {tuple(y.shape)}, expected ({x.shape[0]}, "
                    f"{len(self.outputs)}) for outputs {self.outputs}"
                )

    @property
    def n_train(self) -> int:
        """Number of training rows."""
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test rows."""
        return int(self.x_test.shape[0])


def register_data_maker(problem_type: str, fn: DataMaker) -> None:
    """Use ``fn(spec) -> Dataset`` to build data for problems of ``problem_type``."""
    if not callable(fn):
        raise TypeError(f"data maker for {problem_type!r} must be callable, got {fn!r}")
    DATA_MAKERS[problem_type] = fn


def make_dataset(spec: ProblemSpec) -> Dataset:
    """Build the dataset of ``spec`` with the maker registered for its type."""
    maker = DATA_MAKERS.get(spec.type)
    if maker is None and spec.type in _LAZY_MAKERS:
        module = _LAZY_MAKERS[spec.type]
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:  # not written/installed yet; other errors surface
            if err.name is None or not module.startswith(err.name):
                raise
        maker = DATA_MAKERS.get(spec.type)
    if maker is None:
        raise ProblemError(
            f"{spec.name}: no data maker for problem type {spec.type!r} "
            f"(available: {', '.join(sorted(DATA_MAKERS)) or 'none'})",
            source=spec.source,
        )
    return maker(spec)


def split_rows(
    n_rows: int, n_train: int, n_test: int, seed: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """Shuffled row indices for train and test, and a description of the split.

    ``n_train`` + ``n_test`` rows when the file has that many, else 80/20 of all rows
    (at least two training rows and one test row).

    Raises:
        ValueError: for fewer than :data:`MIN_FILE_ROWS` rows.
    """
    if n_rows < MIN_FILE_ROWS:
        raise ValueError(f"need at least {MIN_FILE_ROWS} rows, got {n_rows}")
    order = torch.randperm(n_rows, generator=torch.Generator().manual_seed(seed)).numpy()
    if n_rows >= n_train + n_test:
        return order[:n_train], order[n_train : n_train + n_test], "counts"
    cut = min(max(2, round(0.8 * n_rows)), n_rows - 1) if n_test else n_rows
    return order[:cut], order[cut:], "80/20"


def add_noise(y: torch.Tensor, noise: float, seed: int) -> torch.Tensor:
    """``y + noise * std(y) * N(0, 1)`` per column (seeded by ``seed``); no-op for 0."""
    if noise == 0 or y.shape[0] == 0:
        return y
    gen = torch.Generator().manual_seed(seed + 1_000_003)
    std = y.std(dim=0, keepdim=True) if y.shape[0] > 1 else y.abs()
    return y + noise * std * torch.randn(y.shape, generator=gen, dtype=y.dtype)


def _sample_box(spec: ProblemSpec, names: list[str], n: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(spec.data.seed)
    bounds = torch.tensor([spec.data.ranges[v] for v in names], dtype=torch.float64)
    unit = torch.rand((n, len(names)), generator=gen, dtype=torch.float64)
    return bounds[:, 0] + (bounds[:, 1] - bounds[:, 0]) * unit


def _regression_sampled(spec: ProblemSpec, system: RegressionSystem) -> Dataset:
    inputs, outputs = system.input_names(), system.output_names()
    n_train, n_test = spec.data.n_train, spec.data.n_test
    x = _sample_box(spec, inputs, n_train + n_test)
    columns = [x[:, j].numpy() for j in range(len(inputs))]
    ys = []
    for out, text, expr in zip(outputs, system.targets(), system.target_exprs(), strict=True):
        y = lambdify(expr, inputs)(*columns)
        bad = ~np.isfinite(y)
        if bad.any():
            row = int(np.argmax(bad))
            at = ", ".join(f"{v}={c[row]:.4g}" for v, c in zip(inputs, columns, strict=True))
            box = ", ".join(f"{v} = {list(spec.data.ranges[v])}" for v in inputs)
            raise ProblemError(
                f"{spec.name}: target {out} = {text} is not finite at {int(bad.sum())} of "
                f"{len(y)} sampled points (e.g. {at}); narrow data.ranges ({box})",
                source=spec.source,
            )
        ys.append(y)
    y_all = torch.from_numpy(np.stack(ys, axis=1))
    meta = {"source": "sampled", "ranges": {v: list(spec.data.ranges[v]) for v in inputs}}
    return _finish(
        spec, inputs, outputs, x[:n_train], y_all[:n_train], x[n_train:], y_all[n_train:], meta
    )


def _regression_file(spec: ProblemSpec, system: RegressionSystem) -> Dataset:
    inputs, outputs = system.input_names(), system.output_names()
    path = spec.data.file
    assert path is not None
    table = read_columns(path, [*inputs, *outputs], spec.data.columns)
    x_all = torch.from_numpy(np.stack([table[v] for v in inputs], axis=1))
    y_all = torch.from_numpy(np.stack([table[v] for v in outputs], axis=1))
    if len(x_all) < MIN_FILE_ROWS:
        raise ProblemError(
            f"{path}: only {len(x_all)} data row(s); need at least {MIN_FILE_ROWS} "
            "(2 to train on, 1 to test on)",
            source=path,
        )
    train, test, split = split_rows(len(x_all), spec.data.n_train, spec.data.n_test, spec.data.seed)
    meta = {
        "source": "file",
        "file": str(path),
        "sha256": file_sha256(path),
        "rows": len(x_all),
        "split": split,
        "columns": {n: spec.data.columns.get(n, n) for n in [*inputs, *outputs]},
    }
    train_t, test_t = torch.from_numpy(train), torch.from_numpy(test)
    return _finish(
        spec, inputs, outputs, x_all[train_t], y_all[train_t], x_all[test_t], y_all[test_t], meta
    )


def _finish(
    spec: ProblemSpec,
    inputs: list[str],
    outputs: list[str],
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    meta: dict[str, Any],
) -> Dataset:
    meta.update(problem=spec.name, type=spec.type, seed=spec.data.seed, noise=spec.data.noise)
    y_train = add_noise(y_train, spec.data.noise, spec.data.seed)
    return Dataset(
        inputs,
        outputs,
        x_train.contiguous(),
        y_train.contiguous(),
        x_test.contiguous(),
        y_test.contiguous(),
        meta,
    )


def make_regression_dataset(spec: ProblemSpec) -> Dataset:
    """The ``regression`` data maker: sample the target formulas or read ``[data].file``."""
    system = spec.system
    if not isinstance(system, RegressionSystem):
        raise TypeError(f"expected a regression problem, got type {spec.type!r}")
    if spec.data.file is not None:
        return _regression_file(spec, system)
    return _regression_sampled(spec, system)


register_data_maker("regression", make_regression_dataset)
