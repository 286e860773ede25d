"""Figure: the double pendulum, true against learned rollout (docs/figures/double_pendulum_rollout.png).

Runs ``physkan.discover("double-pendulum")`` (or ``--problem FILE``, e.g. one reading a
``physkan simulate`` trajectory file), then integrates from one held-out state over
t in [0, 5] the true Lagrangian, the discovered formula and the learned numeric (spline
block) model, and plots the two angles. Prints the formula and both rollout errors.

    .venv/bin/python scripts/make_multidof_figures.py [--problem double-pendulum] [--out PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from physkan.discover import discover
    from physkan.physics import lagrangian_from_sympy, lagrangian_trajectories
    from physkan.problems import load_problem
    from physkan.problems.datasets import make_dataset
    from physkan.strategies.lagrangian_nd import spline_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="double-pendulum")
    parser.add_argument("--out", default=str(ROOT / "docs/figures/double_pendulum_rollout.png"))
    args = parser.parse_args()

    spec = load_problem(args.problem)
    result = discover(spec)
    coords = list(spec.system.coordinates)
    data = make_dataset(spec)
    centre = data.x_train.mean(0)
    z0 = centre + 0.5 * (data.x_test[:1] - centre)
    t = torch.linspace(0, 5, 201, dtype=torch.float64)
    laws = {
        "true": lagrangian_from_sympy(spec.system.lagrangian_expr(), coords),
        "discovered formula": lagrangian_from_sympy(result.formulas[0], coords),
        "learned spline model": spline_model(data)[0],
    }
    paths = {name: lagrangian_trajectories(L, z0, t)[:, 0, :] for name, L in laws.items()}
    for name in ("discovered formula", "learned spline model"):
        err = float(((paths[name] - paths["true"]) ** 2).mean().sqrt())
        print(f"{name}: rollout RMSE over t in [0, 5] = {err:.2e}")
    print(f"L = {result.formulas[0]}   recovered: {result.recovered} ({result.seconds:.1f} s)")

    fig, axes = plt.subplots(1, len(coords), figsize=(5 * len(coords), 3.4), sharex=True)
    styles = {"true": dict(color="black", lw=2.5), "discovered formula": dict(color="tab:orange", ls="--", lw=1.6),
              "learned spline model": dict(color="tab:blue", ls=":", lw=1.6)}  # fmt: skip
    for k, ax in enumerate(axes):
        for name, path in paths.items():
            ax.plot(t, path[:, k], label=name, **styles[name])
        ax.set_xlabel("t")
        ax.set_ylabel(coords[k])
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{spec.name}: true vs learned rollout")
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
