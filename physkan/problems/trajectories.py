"""Trajectory files for the physics types: read, validate, differentiate.

A trajectory file (CSV or HDF5, read by :func:`physkan.problems.tables.read_columns`, so
hostile files fail with one clear line) has the columns

* ``t`` — time (units of the problem), strictly increasing within each trajectory,
  evenly or unevenly sampled;
* ``<q>`` — one column per ``[system].coordinates`` entry;
* optional ``<q>_dot`` — velocities (used instead of differentiating ``q`` once more);
* ``p_<q>`` — canonical momenta (required by the ``hamiltonian`` type, ignored otherwise);
* optional ``trajectory`` — an id per row; rows with the same id form one trajectory (in
  file order). Without it the whole file is one trajectory.

Derivatives (``[data] derivatives = "spline"``, the only route so far) come from one spline
per trajectory and column, with the smoothing chosen from the noise: the noise standard
deviation ``sigma`` is estimated from leave-one-out residuals of local quintic fits
(:func:`estimate_noise`, valid for uneven sampling); if it is at round-off level the data
are interpolated by a quintic spline, else a quintic smoothing spline with residual sum
``s = N sigma^2`` is fitted (FITPACK; the noise is also smoothed out of the states). The
ends of each trajectory, where splines are poor, are trimmed (:func:`trim_count`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from .errors import ProblemError
from .tables import read_columns

__all__ = [
    "MIN_SAMPLES",
    "TIME_COLUMN",
    "TRAJECTORY_COLUMN",
    "Trajectory",
    "TrajectoryStates",
    "estimate_noise",
    "load_trajectory_states",
    "momentum_name",
    "read_trajectories",
    "spline_derivatives",
    "trajectory_states",
    "trim_count",
]

TIME_COLUMN = "t"
TRAJECTORY_COLUMN = "trajectory"
#: fewest samples a trajectory needs (a quintic spline and the noise estimate need 9+).
MIN_SAMPLES = 12
#: relative noise below which the samples count as exact (interpolated, not smoothed):
#: a noise-free orbit's local-fit residuals reach ~1e-8 near a close approach.
EXACT_NOISE = 1e-6

Kind = Literal["lagrangian", "hamiltonian"]


def momentum_name(coordinate: str) -> str:
    """The column of the momentum conjugate to ``coordinate`` (``x`` -> ``p_x``)."""
    return f"p_{coordinate}"


@dataclass
class Trajectory:
    """One trajectory: ``t (T,)``, ``q (T, n)``, optional ``qdot``/``p`` ``(T, n)``."""

    t: np.ndarray
    q: np.ndarray
    qdot: np.ndarray | None = None
    p: np.ndarray | None = None
    ident: float = 0.0


def _stack(table: Mapping[str, np.ndarray], names: Sequence[str], rows: np.ndarray) -> np.ndarray:
    """Columns ``names`` at ``rows`` as ``(len(rows), len(names))``."""
    return np.stack([table[c][rows] for c in names], axis=1)


def read_trajectories(
    path: str | Path,
    coordinates: Sequence[str],
    *,
    columns: Mapping[str, str] | None = None,
    need_momenta: bool = False,
    min_samples: int = MIN_SAMPLES,
) -> list[Trajectory]:
    """Read and validate the trajectories of a file (format: module docstring).

    Raises:
        ProblemError: naming the file and the column: missing column (``p_<q>`` when
            ``need_momenta``), NaN/inf, ``t`` not strictly increasing within a trajectory,
            a trajectory with fewer than ``min_samples`` rows.
    """
    path = Path(path)
    coords = list(coordinates)
    vels = [f"{q}_dot" for q in coords]
    moms = [momentum_name(q) for q in coords]
    required = [TIME_COLUMN, *coords, *(moms if need_momenta else [])]
    optional = [TRAJECTORY_COLUMN, *vels, *([] if need_momenta else moms)]
    table = read_columns(path, required, columns, optional=optional)
    ids = table.get(TRAJECTORY_COLUMN, np.zeros_like(table[TIME_COLUMN]))
    has_v, has_p = all(v in table for v in vels), all(m in table for m in moms)
    out = []
    for ident in dict.fromkeys(ids.tolist()):  # first-appearance order
        rows = np.flatnonzero(ids == ident)
        t = table[TIME_COLUMN][rows]
        where = f"{path}: trajectory {ident:g}" if TRAJECTORY_COLUMN in table else f"{path}"
        if len(rows) < min_samples:
            raise ProblemError(
                f"{where} has {len(rows)} samples; column 't' needs at least {min_samples} "
                "per trajectory to estimate derivatives",
                source=path,
            )
        steps = np.diff(t)
        if np.any(steps <= 0):
            bad = int(np.argmax(steps <= 0)) + 1
            raise ProblemError(
                f"{where}: column 't' is not strictly increasing (t = {t[bad - 1]:g} then "
                f"{t[bad]:g} at row {int(rows[bad]) + 2} of the file)",
                source=path,
            )
        out.append(Trajectory(t=t, q=_stack(table, coords, rows),
                              qdot=_stack(table, vels, rows) if has_v else None,
                              p=_stack(table, moms, rows) if has_p else None, ident=float(ident)))  # fmt: skip
    return out


def estimate_noise(t: np.ndarray, y: np.ndarray, half: int = 4) -> float:
    """Standard deviation of the noise on ``y (T,)`` sampled at ``t (T,)`` (units of ``y``).

    Each interior sample is predicted from its ``2 * half`` neighbours by a quintic
    least-squares fit (uneven sampling allowed); with prediction weights ``w``, the
    residual has variance ``sigma^2 (1 + |w|^2)``; the mean of the normalised squared
    residuals is ``sigma^2`` (the RMS noise, also for noise that varies along ``y``).
    For a smooth noise-free signal the estimate is at round-off level.
    """
    n = len(t)
    if n < 2 * half + 1:
        return float("nan")
    centres = np.arange(half, n - half)
    offsets = np.concatenate([np.arange(-half, 0), np.arange(1, half + 1)])
    nb = centres[:, None] + offsets[None, :]  # (M, 2h)
    scale = (t[nb] - t[centres, None]).std(axis=1, keepdims=True)
    dt = (t[nb] - t[centres, None]) / scale
    vander = dt[..., None] ** np.arange(6)  # (M, 2h, 6)
    weights = np.linalg.pinv(vander)[:, 0, :]  # value at the centre: (M, 2h)
    resid = y[centres] - np.einsum("mk,mk->m", weights, y[nb])
    norm = resid**2 / (1.0 + (weights**2).sum(axis=1))
    return float(math.sqrt(np.mean(norm)))


def trim_count(n: int, smoothed: bool) -> int:
    """Samples dropped at each end of a trajectory of ``n`` samples (3 % when smoothed)."""
    return max(3, round(0.03 * n)) if smoothed else 2


def spline_derivatives(
    t: np.ndarray, y: np.ndarray, orders: int = 2
) -> tuple[list[np.ndarray], bool]:
    """Values and derivatives ``[y, y', ..., y^(orders)]`` of ``y (T,)`` at ``t``, and
    whether the data were smoothed (noise above round-off) rather than interpolated."""
    from scipy.interpolate import UnivariateSpline, make_interp_spline

    sigma = estimate_noise(t, y)
    level = float(np.abs(y).max()) or 1.0
    if not sigma > EXACT_NOISE * level:
        spline = make_interp_spline(t, y, k=5)
        return [spline(t, nu=k) for k in range(orders + 1)], False
    spline = UnivariateSpline(t, y, k=5, s=len(t) * sigma**2)
    return [spline.derivative(k)(t) if k else spline(t) for k in range(orders + 1)], True


@dataclass
class TrajectoryStates:
    """States and derivatives on the trimmed samples of all trajectories (float64).

    ``q``, ``qdot``, ``qddot`` ``(N, n)``; for Hamiltonian data ``p``, ``pdot`` ``(N, n)``
    (else None). ``t``, ``trajectory`` ``(N,)``. ``noise`` maps each column to its
    estimated noise std (its units); ``smoothed`` says whether any column was smoothed.
    """

    q: Tensor
    qdot: Tensor
    qddot: Tensor
    t: Tensor
    trajectory: Tensor
    p: Tensor | None = None
    pdot: Tensor | None = None
    noise: dict[str, float] = field(default_factory=dict)
    smoothed: bool = False


def _columns(traj: Trajectory, coords: list[str], kind: Kind) -> dict[str, tuple[np.ndarray, int]]:
    """name -> (samples, highest derivative needed) for one trajectory."""
    out: dict[str, tuple[np.ndarray, int]] = {}
    for j, q in enumerate(coords):
        if kind == "hamiltonian":
            assert traj.p is not None
            out[q] = (traj.q[:, j], 2)
            out[momentum_name(q)] = (traj.p[:, j], 1)
        elif traj.qdot is not None:
            out[q] = (traj.q[:, j], 0)
            out[f"{q}_dot"] = (traj.qdot[:, j], 1)
        else:
            out[q] = (traj.q[:, j], 2)
    return out


def trajectory_states(
    trajectories: Sequence[Trajectory], coordinates: Sequence[str], kind: Kind = "lagrangian"
) -> TrajectoryStates:
    """Differentiate every trajectory (spline route) and stack the trimmed samples.

    Lagrangian: ``q``, ``qdot``, ``qddot`` (from the ``<q>_dot`` columns when present).
    Hamiltonian: ``q``, ``p`` and their first derivatives (``qddot`` is ``d qdot/dt``).
    """
    coords = list(coordinates)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("q", "qdot", "qddot", "p", "pdot", "t", "id")}
    noise: dict[str, float] = {}
    smoothed = False
    for traj in trajectories:
        derived: dict[str, list[np.ndarray]] = {}
        flags = []
        for name, (y, order) in _columns(traj, coords, kind).items():
            derived[name], smooth = spline_derivatives(traj.t, y, orders=max(order, 1))
            flags.append(smooth)
            noise[name] = max(noise.get(name, 0.0), estimate_noise(traj.t, y))
        smoothed |= any(flags)
        cut = slice(trim_count(len(traj.t), any(flags)), -trim_count(len(traj.t), any(flags)))
        q = np.stack([derived[c][0] for c in coords], 1)
        if kind == "hamiltonian":
            qdot = np.stack([derived[c][1] for c in coords], 1)
            qddot = np.stack([derived[c][2] for c in coords], 1)
            parts["p"].append(np.stack([derived[momentum_name(c)][0] for c in coords], 1)[cut])
            parts["pdot"].append(np.stack([derived[momentum_name(c)][1] for c in coords], 1)[cut])
        elif traj.qdot is not None:
            qdot = np.stack([derived[f"{c}_dot"][0] for c in coords], 1)
            qddot = np.stack([derived[f"{c}_dot"][1] for c in coords], 1)
        else:
            qdot = np.stack([derived[c][1] for c in coords], 1)
            qddot = np.stack([derived[c][2] for c in coords], 1)
        for key, arr in (("q", q), ("qdot", qdot), ("qddot", qddot)):
            parts[key].append(arr[cut])
        parts["t"].append(traj.t[cut])
        parts["id"].append(np.full(len(traj.t[cut]), traj.ident))
    cat = lambda key: torch.from_numpy(np.concatenate(parts[key])) if parts[key] else None  # noqa: E731
    return TrajectoryStates(q=cat("q"), qdot=cat("qdot"), qddot=cat("qddot"), t=cat("t"),
                            trajectory=cat("id"), p=cat("p"), pdot=cat("pdot"), noise=noise,
                            smoothed=smoothed)  # fmt: skip


def load_trajectory_states(
    path: str | Path,
    coordinates: Sequence[str],
    *,
    kind: Kind = "lagrangian",
    columns: Mapping[str, str] | None = None,
) -> TrajectoryStates:
    """Read a trajectory file and differentiate it: the one entry point for the strategies.

    Args:
        path: CSV or HDF5 trajectory file (format: module docstring).
        coordinates: the names of ``q`` (``[system].coordinates``).
        kind: ``"lagrangian"`` (needs ``t``, ``q``) or ``"hamiltonian"`` (also ``p_<q>``).
        columns: ``[data].columns`` renaming (name -> column in the file).

    Returns:
        :class:`TrajectoryStates` on the trimmed samples of every trajectory.
    """
    trajs = read_trajectories(path, coordinates, columns=columns, need_momenta=kind == "hamiltonian")
    return trajectory_states(trajs, coordinates, kind)
