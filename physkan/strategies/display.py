"""Notebook display of what a discovery found: ``_repr_html_`` and ``_repr_latex_`` bodies.

Jupyter shows an object through its ``_repr_html_`` (or ``_repr_latex_``) method.
:class:`~physkan.strategies.base.Discovery` and :class:`physkan.KANRegressor` both render
with :func:`result_html` / :func:`result_latex`: the formula (LaTeX, typeset by MathJax),
whether it was recovered, the metrics, the Pareto front and a drawing of the network (an
inline base64 PNG from :func:`physkan.interpret.plot.plot`, left out without matplotlib or
for a network it cannot draw).
"""

from __future__ import annotations

import base64
import html
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sympy
import torch
from torch import nn

from physkan.symbolic.simplify import to_latex, to_text

__all__ = ["network_png", "result_html", "result_latex"]

#: samples drawn to plot a network (its edges are drawn on them).
PLOT_SAMPLES = 256
#: at most this many Pareto rows are shown.
PARETO_ROWS = 12


def result_latex(outputs: Sequence[str], formulas: Sequence[sympy.Expr]) -> str:
    """``$$ y = … $$`` display math, one equation per output (``\\\\`` between them)."""
    lines = [f"{sympy.latex(sympy.Symbol(o))} = {to_latex(f, digits=6)}" for o, f in zip(outputs, formulas)]
    if len(lines) == 1:
        return f"$${lines[0]}$$"
    return "$$\\begin{aligned}" + " \\\\ ".join(line.replace(" = ", " &= ", 1) for line in lines) \
        + "\\end{aligned}$$"  # fmt: skip


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return html.escape(str(value))
    if isinstance(value, int) or (math.isfinite(value) and value == int(value) and abs(value) < 1e6):
        return str(int(value))
    return f"{value:.3e}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _samples(model: nn.Module, x: torch.Tensor | None) -> torch.Tensor:
    """``x`` (at most :data:`PLOT_SAMPLES` rows), or uniform samples over the first grid."""
    dtype = next(model.parameters()).dtype
    if x is not None:
        return torch.as_tensor(x, dtype=dtype)[:PLOT_SAMPLES]
    box = model.layers[0].grid_interior().to(dtype)  # (in, G + 1)
    low, high = box.min(dim=1).values, box.max(dim=1).values
    unit = torch.rand(PLOT_SAMPLES, box.shape[0], generator=torch.Generator().manual_seed(0), dtype=dtype)
    return low + (high - low) * unit


def network_png(model: nn.Module | None, x: torch.Tensor | None = None) -> bytes | None:
    """The network drawn as PNG bytes (on ``x (N, n_in)`` or grid samples), or ``None``
    without matplotlib, without a model, or for a model the plotter cannot draw."""
    from physkan.kan import MultKAN

    if not isinstance(model, MultKAN):
        return None
    try:
        import matplotlib  # noqa: F401 - optional
    except ImportError:
        return None
    from physkan.interpret.plot import plot

    with tempfile.TemporaryDirectory(prefix="physkan-repr-") as tmp:
        path = Path(tmp) / "kan.png"
        try:
            with torch.no_grad():
                plot(model, _samples(model, x), path, dpi=80)
        except (RuntimeError, ValueError, IndexError):  # a drawing never breaks the display
            return None
        return path.read_bytes()


def result_html(
    *,
    title: str,
    outputs: Sequence[str],
    formulas: Sequence[sympy.Expr],
    recovered: bool | None,
    recovery: str,
    metrics: Mapping[str, Any],
    pareto: Sequence[Any] = (),
    model: nn.Module | None = None,
    x: torch.Tensor | None = None,
    plot: bool = True,
) -> str:
    """An HTML card: formula (MathJax LaTeX), recovered, metrics, Pareto front, network PNG.

    ``pareto`` holds :class:`~physkan.symbolic.pareto.Candidate` rows (formula, complexity,
    test_rmse, source); ``x (N, n_in)`` are the samples the network is drawn on.
    """
    verdict = {True: "yes", False: "no", None: "no ground truth"}[recovered]
    parts = [f"<div class='physkan-result'><h4>{html.escape(title)}</h4>",
             f"<p>{html.escape(result_latex(outputs, formulas))}</p>",
             f"<p><code>{html.escape('; '.join(to_text(f) for f in formulas))}</code></p>",
             f"<p><b>recovered:</b> {verdict} <small>{html.escape(recovery)}</small></p>",
             _table(["metric", "value"], [[html.escape(k), _number(v)] for k, v in metrics.items()])]  # fmt: skip
    if pareto:
        rows = [[_number(c.complexity), _number(c.test_rmse), html.escape(to_text(c.formula, digits=6)),
                 html.escape(c.source)] for c in list(pareto)[:PARETO_ROWS]]  # fmt: skip
        parts.append("<p><b>Pareto front</b> (simplest first)</p>")
        parts.append(_table(["complexity", "test RMSE", "formula", "found by"], rows))
    png = network_png(model, x) if plot else None
    if png is not None:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<img alt='the network' src='data:image/png;base64,{data}'/>")
    parts.append("</div>")
    return "".join(parts)
