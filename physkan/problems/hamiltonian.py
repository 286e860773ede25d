"""Data maker of the ``hamiltonian`` type: phase-space states and Hamilton's equations.

Sampled: ``z = (q, p)`` uniform in ``[data].ranges``, ``dz/dt = (dH/dp, -dH/dq)`` from the
true H of :class:`~physkan.problems.hamiltonian_system.HamiltonianSystem`. With ``[data]
file``: :func:`physkan.problems.trajectory_data.hamiltonian_file_dataset`.
"""

from __future__ import annotations

import numpy as np
import torch

from .datasets import Dataset, _sample_box, register_data_maker
from .errors import ProblemError
from .expressions import lambdify
from .hamiltonian_system import HamiltonianSystem, hamilton_rhs_exprs
from .spec import ProblemSpec

__all__ = ["make_hamiltonian_dataset"]


def make_hamiltonian_dataset(spec: ProblemSpec) -> Dataset:
    """States ``[q, p]`` and ``dz/dt`` from the true H (or from ``[data].file``)."""
    system = spec.system
    if not isinstance(system, HamiltonianSystem):
        raise TypeError(f"expected a hamiltonian problem, got type {spec.type!r}")
    if spec.data.file is not None:
        from .trajectory_data import hamiltonian_file_dataset

        return hamiltonian_file_dataset(spec)
    H = system.hamiltonian_expr()
    if H is None:  # pragma: no cover - the schema requires it without a file
        raise ProblemError("system.hamiltonian: a ground truth is needed to sample data")
    inputs = system.input_names()
    n_train, n_test = spec.data.n_train, spec.data.n_test
    z = _sample_box(spec, inputs, n_train + n_test)
    cols = [z[:, j].numpy() for j in range(len(inputs))]
    rhs = [np.broadcast_to(lambdify(e, inputs)(*cols), (len(z),)) for e in hamilton_rhs_exprs(H, system.coordinates)]
    zdot = torch.from_numpy(np.stack(rhs, 1).astype(np.float64))
    if not torch.isfinite(zdot).all():
        raise ProblemError(
            f"{spec.name}: system.hamiltonian gives NaN or inf in the sampled data.ranges; narrow them",
            source=spec.source,
        )
    tr, te = slice(0, n_train), slice(n_train, None)
    return Dataset(
        inputs=inputs, outputs=system.derivative_names(), x_train=z[tr], y_train=zdot[tr],
        x_test=z[te], y_test=zdot[te],
        meta={"source": "sampled", "seed": spec.data.seed, "problem": spec.name, "type": spec.type,
              "ranges": {k: list(v) for k, v in spec.data.ranges.items()}},
        extras={"zdot_train": zdot[tr], "zdot_test": zdot[te]},
    )  # fmt: skip


register_data_maker("hamiltonian", make_hamiltonian_dataset)
