"""``physkan plot MODEL.h5 -o out.png``: draw a saved model's network diagram."""

from __future__ import annotations

import math
from pathlib import Path

import click
import torch

from physkan.errors import UserError

__all__ = ["PlotError", "plot_command"]


class PlotError(click.ClickException, UserError):
    """A user-facing error: one line on stderr, exit code 2."""

    exit_code = 2


@click.command("plot")
@click.argument("model_path", metavar="MODEL.h5", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="PNG to write (default: MODEL.png next to the model).")
@click.option("--data", "n_points", type=click.IntRange(min=2), default=500, show_default=True,
              help="Number of points sampled uniformly in the model's grid range.")
@click.option("--beta", type=float, default=3.0, show_default=True,
              help="Transparency sharpness: alpha = tanh(beta * attribution score).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
              help="Sampling seed.")
def plot_command(model_path: Path, output: Path | None, n_points: int, beta: float,
                 seed: int) -> None:
    """Draw the KAN in MODEL.h5 with its activation curves and attribution scores."""
    from physkan.interpret.plot import plot
    from physkan.io import load_model
    from physkan.kan import MultKAN

    if not model_path.is_file():
        raise PlotError(f"{model_path}: no such file")
    try:
        model = load_model(model_path)
    except (ValueError, OSError) as exc:  # ModelFileError: one line, the full message
        raise PlotError(" ".join(str(exc).split()) or type(exc).__name__) from None
    if not isinstance(model, MultKAN):
        raise PlotError(f"{model_path}: holds a {type(model).__name__}, not a KAN")
    state = model.state_dict().items()
    bad = [n for n, t in state if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise PlotError(f"{model_path}: tensor {bad[0]} has NaN or infinite values; cannot plot")
    lo, hi = (float(v) for v in model.grid_range)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise PlotError(f"{model_path}: grid_range [{lo}, {hi}] is not a finite interval")
    gen = torch.Generator().manual_seed(seed)
    dtype = model.layers[0].coef.dtype
    x = lo + (hi - lo) * torch.rand(n_points, model.width[0][0], generator=gen, dtype=dtype)
    out = output or model_path.with_suffix(".png")
    try:
        plot(model, x, out, beta=beta)
    except OSError as exc:
        raise PlotError(f"{out}: cannot write ({exc.strerror or exc})") from None
    click.echo(str(out))
