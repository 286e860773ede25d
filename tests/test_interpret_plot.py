"""Network plots and the ``physkan plot`` command."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.image as mpimg
import pytest
import torch
from _fit import fit_lbfgs
from click.testing import CliRunner

from physkan.interpret import plot, prune
from physkan.interpret.cli import plot_command
from physkan.io import save_model
from physkan.kan import MultKAN


def _nonblank_fraction(path: Path) -> float:
    img = mpimg.imread(path)[..., :3]
    return float((img.mean(-1) < 0.95).mean())


@pytest.fixture(scope="module")
def tutorial() -> tuple[MultKAN, torch.Tensor]:
    """A pruned [2, 5, 1] model of f = exp(sin(pi x) + y^2)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(400, 2, generator=gen) * 2 - 1
    y = torch.exp(torch.sin(math.pi * x[:, :1]) + x[:, 1:] ** 2)
    model = MultKAN([2, 5, 1], grid=5, seed=0, variables=["x", "y"], outputs=["f"])
    fit_lbfgs(model, x, y, steps=60, lamb=3e-2)
    return prune(model, x), x


def test_plot_pruned_tutorial(tutorial, tmp_path: Path) -> None:
    model, x = tutorial
    assert model.n_nodes(1) < 5
    model.layers[0].symbolic_mask[0, 0] = 1.0  # show a symbolic edge too
    model.layers[0].symbolic_names[0][0] = "sin"
    path = plot(model, x, tmp_path / "pruned.png", title="pruned")
    assert path.stat().st_size > 10_000
    assert 0.01 < _nonblank_fraction(path) < 0.6


def test_plot_mult_nodes(tmp_path: Path) -> None:
    model = MultKAN([3, [2, 1], 1], seed=1)
    path = plot(model, torch.rand(100, 3) * 2 - 1, tmp_path / "mult.png", beta=10)
    assert path.stat().st_size > 10_000 and _nonblank_fraction(path) > 0.01


def test_plot_command(tmp_path: Path) -> None:
    model = MultKAN([2, 3, 1], seed=0)
    save_model(model, tmp_path / "m.h5")
    runner = CliRunner()
    res = runner.invoke(plot_command, [str(tmp_path / "m.h5"), "-o", str(tmp_path / "o.png"),
                                       "--data", "50"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o.png").stat().st_size > 5000
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    res = runner.invoke(plot_command, [str(bad)])
    assert res.exit_code == 2
    assert res.output.strip().startswith("Error:") and len(res.output.strip().splitlines()) == 1
    res = runner.invoke(plot_command, [str(tmp_path / "missing.h5")])
    assert res.exit_code == 2 and "no such file" in res.output
