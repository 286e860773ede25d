"""Arrays -> a regression :class:`~physkan.problems.ProblemSpec` for the discovery engine.

:class:`~physkan.api.estimator.KANRegressor` runs exactly the pipeline of ``physkan discover``
(:func:`physkan.discover.discover`): it writes ``X`` and ``y`` to an HDF5 data file (one 2-D
table with a ``columns`` attribute, the layout ``[data].file`` reads, float64, bitwise) and
describes them with an in-memory problem whose ``[data]`` split holds out ``test_size`` of
the rows (shuffled with ``random_state``) to choose and judge formulas. The estimator's
hyper-parameters map to the problem tables; pydantic validates them, and an invalid one
raises ``ValueError`` naming the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from physkan.problems import ProblemSpec, problem_from_dict

__all__ = ["PARAMETER_FIELDS", "build_problem", "output_name", "write_table"]

#: estimator parameter -> the problem-file field it sets (for error messages).
PARAMETER_FIELDS: dict[str, str] = {
    "width": "model.width",
    "grid": "model.grid",
    "k": "model.k",
    "basis": "model.basis",
    "steps": "train.steps",
    "optimizer": "train.optimizer",
    "library": "discover.library",
    "time_budget": "discover.time_budget",
    "random_state": "data.seed",
    "truth": "system.target",
}


def output_name(variables: Sequence[str]) -> str:
    """The target's name: ``y``, or ``target`` (``target_``…) when a feature is named so."""
    for name in ("y", "target", "target_", "target__"):
        if name not in variables:
            return name
    return f"target_{len(variables)}"


def write_table(path: Path, X: np.ndarray, y: np.ndarray, names: Sequence[str], output: str) -> Path:
    """Write ``X (N, d)`` and ``y (N,)`` as one HDF5 table ``(N, d + 1)`` named by its columns."""
    import h5py

    with h5py.File(path, "w") as fh:
        table = fh.create_dataset("table", data=np.column_stack([X, y]).astype(np.float64))
        table.attrs["columns"] = [*names, output]
    return path


def split_sizes(n_samples: int, test_size: float) -> tuple[int, int]:
    """``(n_train, n_test)``: at least one held-out row and two training rows."""
    if not (isinstance(test_size, (int, float)) and 0 < float(test_size) < 1):
        raise ValueError(f"test_size: expected a fraction in (0, 1), got {test_size!r}")
    n_test = min(max(1, round(float(test_size) * n_samples)), n_samples - 2)
    return n_samples - n_test, n_test


def _ranges(X: np.ndarray, names: Sequence[str]) -> dict[str, list[float]]:
    """Each feature's observed ``[min, max]`` (constant columns have no range)."""
    low, high = X.min(axis=0), X.max(axis=0)
    return {n: [float(a), float(b)] for n, a, b in zip(names, low, high) if a < b}


def _field_of(message: str) -> str:
    """The estimator parameter an error message of the problem schema is about."""
    for param, field in PARAMETER_FIELDS.items():
        if field in message or f"[{field.split('.')[0]}].{field.split('.')[1]}" in message:
            return param
    return "parameters"


def build_problem(
    data_file: Path,
    X: np.ndarray,
    names: Sequence[str],
    output: str,
    params: Mapping[str, Any],
    truth: str | None = None,
) -> ProblemSpec:
    """The regression problem of the table in ``data_file`` with the estimator's ``params``.

    Args:
        data_file: the table written by :func:`write_table`.
        X: the features ``(N, d)`` (for the sampling box of the formula checks).
        names: the ``d`` variable names; ``output``: the target's name.
        params: the estimator's :meth:`get_params`.
        truth: an optional ground-truth formula of ``names`` (``recovered_`` then says
            whether the found formula equals it).

    Raises:
        ValueError: an invalid parameter, named (e.g. ``grid: …``).
    """
    n_train, n_test = split_sizes(X.shape[0], params["test_size"])
    seed = params["random_state"]
    seed = 0 if seed is None else seed
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"random_state: expected an int or None, got {seed!r}")
    system: dict[str, Any] = {"variables": list(names), "outputs": [output]}
    if truth is not None:
        system["target"] = truth
    model: dict[str, Any] = {"grid": params["grid"], "k": params["k"], "basis": params["basis"],
                             "seed": int(seed)}  # fmt: skip
    if params["width"] is not None:
        width = params["width"]
        model["width"] = list(width) if isinstance(width, (list, tuple)) else width
    raw = {
        "name": "kanregressor",
        "type": "regression",
        "system": system,
        "data": {"file": str(data_file), "n_train": n_train, "n_test": n_test,
                 "seed": int(seed), "ranges": _ranges(X, names)},
        "model": model,
        "train": {"steps": params["steps"], "optimizer": params["optimizer"]},
        "discover": {"time_budget": params["time_budget"]},
    }  # fmt: skip
    if params["library"] is not None:
        raw["discover"]["library"] = list(params["library"])
    try:
        return problem_from_dict(raw, source="KANRegressor")
    except ValueError as err:
        text = str(err).removeprefix("KANRegressor: ")
        raise ValueError(f"{_field_of(text)}: {text}") from None
