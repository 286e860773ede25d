"""Data makers for the physics problem types (``lagrangian``, ``conservation``, ``metric``).

Each maker turns a validated :class:`~physkan.problems.spec.ProblemSpec` into a
:class:`~physkan.problems.datasets.Dataset`, sampling the ground truth of the ``[system]``
table in the ``[data].ranges`` box. Registered into ``DATA_MAKERS`` on import.
"""

from __future__ import annotations

import sympy
import torch

from physkan.physics.data import (
    conservation_data,
    lagrangian_data,
    lagrangian_from_sympy,
    metric_data,
    sympy_callable,
)
from physkan.problems.datasets import Dataset, register_data_maker
from physkan.problems.errors import ProblemError
from physkan.problems.spec import ProblemSpec

__all__ = ["make_conservation_dataset", "make_lagrangian_dataset", "make_metric_dataset"]


def _ranges(spec: ProblemSpec, names: list[str]) -> list[tuple[float, float]]:
    missing = [n for n in names if n not in spec.data.ranges]
    if missing:
        raise ProblemError(f"data.ranges: missing range for {', '.join(missing)}", source=spec.source)
    return [tuple(map(float, spec.data.ranges[n])) for n in names]  # type: ignore[misc]


def _check_finite(name: str, *tensors: torch.Tensor) -> None:
    for t in tensors:
        if not torch.isfinite(t).all():
            raise ProblemError(f"data: the ground truth of {name} gives NaN or inf in the sampled ranges")


def make_lagrangian_dataset(spec: ProblemSpec) -> Dataset:
    """States ``[q, q_dot]`` and accelerations from the true Lagrangian (``extras['qddot_*']``)."""
    if spec.data.file is not None:
        from physkan.problems.trajectory_data import lagrangian_file_dataset

        return lagrangian_file_dataset(spec)
    system = spec.system
    inputs = system.input_names()
    if system.lagrangian is None:
        raise ProblemError("system.lagrangian: a ground-truth Lagrangian is needed to make data")
    L = lagrangian_from_sympy(system.lagrangian_expr(), list(system.coordinates))
    n = len(system.coordinates)
    n_all = spec.data.n_train + spec.data.n_test
    data = lagrangian_data(L, n, _ranges(spec, inputs), n_all, spec.data.seed, spec.data.noise)
    state, qddot = data["state"], data["qddot"]
    _check_finite("system.lagrangian", state, qddot)
    tr, te = slice(0, spec.data.n_train), slice(spec.data.n_train, None)
    outputs = [f"{q}_ddot" for q in system.coordinates]
    return Dataset(
        inputs=inputs, outputs=outputs, x_train=state[tr], y_train=qddot[tr],
        x_test=state[te], y_test=qddot[te],
        meta={"source": "sampled", "seed": spec.data.seed, "noise": spec.data.noise,
              "ranges": {k: list(v) for k, v in spec.data.ranges.items()}},
        extras={"qddot_train": qddot[tr], "qddot_test": qddot[te]},
    )  # fmt: skip


def make_conservation_dataset(spec: ProblemSpec) -> Dataset:
    """States ``z`` and velocities ``f(z)`` of the flow (``extras['f_*']``)."""
    system = spec.system
    state = list(system.state)
    exprs = system.dynamics_exprs()
    fns = [sympy_callable(e, state) for e in exprs]

    def flow(z: torch.Tensor) -> torch.Tensor:
        return torch.stack([f(z) * torch.ones(z.shape[0], dtype=z.dtype) for f in fns], 1)

    n_all = spec.data.n_train + spec.data.n_test
    data = conservation_data(flow, _ranges(spec, state), n_all, spec.data.seed)
    z, f = data["z"], data["f"]
    _check_finite("system.dynamics", z, f)
    tr, te = slice(0, spec.data.n_train), slice(spec.data.n_train, None)
    return Dataset(
        inputs=state, outputs=[f"{s}_dot" for s in state], x_train=z[tr], y_train=f[tr],
        x_test=z[te], y_test=f[te], meta={"source": "sampled", "seed": spec.data.seed},
        extras={"f_train": f[tr], "f_test": f[te]},
    )  # fmt: skip


def make_metric_dataset(spec: ProblemSpec) -> Dataset:
    """Radii ``r`` in the sampling box (the metric itself is analytic)."""
    system = spec.system
    radius = system.coordinates[1]
    (lo, hi), = _ranges(spec, [radius])
    n_all = spec.data.n_train + spec.data.n_test
    r = metric_data((lo, hi), n_all, spec.data.seed)["r"]
    tr, te = slice(0, spec.data.n_train), slice(spec.data.n_train, None)
    zeros = torch.zeros_like(r)
    return Dataset(
        inputs=[radius], outputs=["delta_t"], x_train=r[tr], y_train=zeros[tr], x_test=r[te],
        y_test=zeros[te], meta={"source": "sampled", "seed": spec.data.seed, "mass": system.mass},
    )  # fmt: skip


def truth_expressions(spec: ProblemSpec) -> list[sympy.Expr]:
    """The ground-truth formula(s) of a problem, if it has any."""
    system = spec.system
    if spec.type == "lagrangian" and system.lagrangian is not None:
        return [system.lagrangian_expr()]
    if spec.type == "regression" and system.target is not None:
        return list(system.target_exprs())
    if spec.type == "conservation" and system.quantities:
        return list(system.quantity_exprs())
    return []


register_data_maker("lagrangian", make_lagrangian_dataset)
register_data_maker("conservation", make_conservation_dataset)
register_data_maker("metric", make_metric_dataset)
