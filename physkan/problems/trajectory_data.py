"""Datasets of the ``lagrangian`` and ``hamiltonian`` types from a trajectory file.

``[data] file`` of a physics problem names a trajectory file
(:mod:`physkan.problems.trajectories`); the samples of all trajectories (ends trimmed) are
shuffled with ``[data].seed`` and split into ``n_train`` + ``n_test`` rows (80/20 when the
file has fewer), exactly as the sampled data makers lay them out, so the strategies do not
care where the data came from:

* ``lagrangian``: inputs ``[q..., q_dot...]``, outputs ``q_ddot...``, ``extras['qddot_*']``;
* ``hamiltonian``: inputs ``[q..., p_q...]``, outputs ``[q_dot..., p_q_dot...]``,
  ``extras['zdot_*']`` (the time derivative of the state ``z = (q, p)``).

``meta`` records the file, its sha256, the number of trajectories and the estimated noise.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .datasets import Dataset, split_rows
from .errors import ProblemError
from .spec import ProblemSpec
from .tables import file_sha256
from .trajectories import TrajectoryStates, load_trajectory_states

__all__ = ["hamiltonian_file_dataset", "lagrangian_file_dataset"]


def _load(spec: ProblemSpec, kind: str) -> TrajectoryStates:
    path = spec.data.file
    assert path is not None
    if spec.data.derivatives != "spline":  # pragma: no cover - the schema allows only spline
        raise ProblemError(f"data.derivatives: unknown route {spec.data.derivatives!r}")
    return load_trajectory_states(path, spec.system.coordinates, kind=kind,  # type: ignore[arg-type]
                                  columns=spec.data.columns)  # fmt: skip


def _split(spec: ProblemSpec, states: TrajectoryStates, x: Tensor, y: Tensor, inputs: list[str],
           outputs: list[str], extra: str) -> Dataset:  # fmt: skip
    path = spec.data.file
    if not torch.isfinite(x).all() or not torch.isfinite(y).all():
        raise ProblemError(f"{path}: the spline derivatives are not finite", source=path)
    try:
        train, test, how = split_rows(len(x), spec.data.n_train, spec.data.n_test, spec.data.seed)
    except ValueError as err:
        raise ProblemError(f"{path}: {err}", source=path) from None
    tr, te = torch.from_numpy(train), torch.from_numpy(test)
    meta = {
        "source": "file", "file": str(path), "sha256": file_sha256(path), "rows": len(x),  # type: ignore[arg-type]
        "split": how, "trajectories": int(states.trajectory.unique().numel()),
        "derivatives": spec.data.derivatives, "smoothed": states.smoothed,
        "noise_estimate": dict(states.noise), "problem": spec.name, "type": spec.type,
        "seed": spec.data.seed,
    }  # fmt: skip
    return Dataset(
        inputs=inputs, outputs=outputs, x_train=x[tr].contiguous(), y_train=y[tr].contiguous(),
        x_test=x[te].contiguous(), y_test=y[te].contiguous(), meta=meta,
        extras={f"{extra}_train": y[tr].contiguous(), f"{extra}_test": y[te].contiguous()},
    )  # fmt: skip


def lagrangian_file_dataset(spec: ProblemSpec) -> Dataset:
    """States ``[q, q_dot]`` and accelerations of a ``lagrangian`` problem's trajectory file."""
    states = _load(spec, "lagrangian")
    coords = list(spec.system.coordinates)
    x = torch.cat([states.q, states.qdot], 1)
    outputs = [f"{q}_ddot" for q in coords]
    return _split(spec, states, x, states.qddot, spec.system.input_names(), outputs, "qddot")


def hamiltonian_file_dataset(spec: ProblemSpec) -> Dataset:
    """Phase-space states ``[q, p]`` and their time derivatives from a trajectory file."""
    states = _load(spec, "hamiltonian")
    assert states.p is not None and states.pdot is not None
    x = torch.cat([states.q, states.p], 1)
    y = torch.cat([states.qdot, states.pdot], 1)
    return _split(spec, states, x, y, spec.system.input_names(), spec.system.derivative_names(), "zdot")
