"""Continual-learning demo: a KAN vs an MLP fitted to 5 Gaussian peaks, one region at a time.

Writes ``docs/continual_learning.png`` (rows: after each phase; columns: KAN, MLP).
Run: ``python scripts/continual_learning.py [-o PATH]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from physkan.interpret.continual import (  # noqa: E402
    gaussian_peaks,
    kan_for_peaks,
    mlp_for_peaks,
    peak_tasks,
    run_continual,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/continual_learning.png"))
    args = parser.parse_args()
    torch.manual_seed(0)
    tasks = peak_tasks(n_peaks=5, n_per_task=200)
    kan = run_continual(kan_for_peaks(grid=100), tasks, steps=50, optimizer="lbfgs")
    mlp = run_continual(mlp_for_peaks(), tasks, steps=400, lr=3e-3)
    truth = gaussian_peaks(kan.grid)
    fig, axes = plt.subplots(5, 2, figsize=(8, 9), sharex=True, sharey=True)
    for phase in range(5):
        for col, (name, res) in enumerate((("KAN", kan), ("MLP", mlp))):
            ax = axes[phase, col]
            ax.plot(kan.grid, truth, color="0.75", lw=1, label="target")
            xt, yt = tasks[phase]
            ax.plot(xt, yt, color="tab:orange", lw=3, alpha=0.6, label="data of this phase")
            ax.plot(res.grid, res.snapshots[phase], color="tab:blue", lw=1.3, label=name)
            old = res.errors[phase][:phase]
            note = f"max RMSE on earlier regions: {max(old):.3f}" if old else "first phase"
            ax.set_title(f"{name}, phase {phase + 1}: {note}", fontsize=8)
            ax.set_ylim(-0.4, 1.4)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    fig.suptitle("Continual learning: KAN splines are local, the MLP forgets", fontsize=11)
    fig.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=110)
    print(args.output)


if __name__ == "__main__":
    main()
