"""One-call S2KAN discovery: train, export formulas, measure test error and description length."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import sympy
import torch
from torch import Tensor

from physkan.s2kan.mdl import MDLParts, precision_floor
from physkan.s2kan.model import S2KAN
from physkan.s2kan.train import S2KANTrainConfig, train_s2kan
from physkan.symbolic.simplify import clean_formula
from physkan.train.objectives import RegressionObjective

__all__ = ["S2KANResult", "s2kan_discover"]


@dataclass
class S2KANResult:
    """Outcome of :func:`s2kan_discover`."""

    model: S2KAN
    formulas: list[sympy.Expr]
    test_rmse: float
    description_length: MDLParts
    spline_edges: list[tuple[int, int, int]]
    seconds: float
    report: list[str] = field(default_factory=list)
    #: ``"identity"`` or ``"log"`` (the model fits ``log|y|``; formulas are mapped back).
    target_transform: str = "identity"
    #: ``(width, transform, total DL bits in y-space)`` of every structure tried.
    candidates: list[tuple[list, str, float]] = field(default_factory=list)


def _as2d(t: Tensor) -> Tensor:
    t = torch.as_tensor(t, dtype=torch.float64)
    return t[:, None] if t.ndim == 1 else t


def _fit_one(xtr, ytr, variables, outputs, width, transform, library, grid, seed, cfg, basis="bspline"):
    """Fit one structure; returns ``(model, y-space DL, y-space train MSE)``."""
    sign = 1.0
    target = ytr
    if transform == "log":
        sign = float(torch.sign(ytr[0, 0]))
        target = torch.log(sign * ytr)
    model = S2KAN(width, library, grid=grid, variables=variables, outputs=outputs, seed=seed,
                  basis=basis).double()  # fmt: skip
    train_s2kan(model, xtr, target, cfg)
    model.eval()
    if transform == "log":
        _snap_powers(model, xtr, target)
    with torch.no_grad():
        pred = _predict(model, xtr, transform, sign)
        mse = float(torch.mean((pred - ytr) ** 2))
    if not math.isfinite(mse):
        mse = float("inf")
    dl = model.description_length(mse, xtr.shape[0], precision_floor(ytr, model.resolution))
    return model, dl, sign


def _predict(model: S2KAN, x: Tensor, transform: str, sign: float) -> Tensor:
    out = model(x)
    return sign * torch.exp(out.clamp(max=700)) if transform == "log" else out


def _structures(xtr: Tensor, ytr: Tensor) -> list[tuple[list, str]]:
    """Structure candidates of ``width="auto"``: an additive layer on ``y``, a two-layer
    network with one product node, and (positive inputs, one-signed target) an additive
    layer on ``log|y|`` (monomials ``c·Π x_i^p_i`` are sums of logs)."""
    n_in, n_out = xtr.shape[1], ytr.shape[1]
    out: list[tuple[list, str]] = [([n_in, n_out], "identity")]
    one_signed = bool((ytr > 0).all() or (ytr < 0).all())
    if n_out == 1 and one_signed and bool((xtr > 0).all()):
        out.insert(0, ([n_in, 1], "log"))
    return out


def _snap_powers(model: S2KAN, x: Tensor, t: Tensor) -> None:
    """Log-target models: turn each open ``c·log(a·x + b)`` with a negligible ``b`` into
    ``p·log(x)`` with ``p`` the nearest simple rational (``c·log a`` goes into the bias), and
    re-centre the output; kept only if the description length on ``t = log|y|`` does not grow."""
    from physkan.s2kan.train import description_length

    layer = model.layers[0]
    if "log" not in layer.library:
        return
    s = layer.library.index("log")
    batch = {"x": x, "y": t}
    before = description_length(model, RegressionObjective(), batch).total_bits
    saved = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        for i, j, k in layer.open_terms().nonzero().tolist():
            if k != s:
                continue
            a, b, c = (float(p[i, j, s]) for p in (layer.a, layer.b, layer.c))
            span = float(x[:, i].abs().max())
            if a <= 0 or abs(b) > 1e-2 * abs(a) * span:
                continue
            p = sympy.nsimplify(c, tolerance=1e-2, rational=True)
            if abs(float(p) - c) > 1e-2 or sympy.denom(p) > 4:
                continue
            layer.a[i, j, s], layer.b[i, j, s], layer.c[i, j, s] = 1.0, 0.0, float(p)
            layer.d[i, j] += c * math.log(a)
        layer.d[0, 0] += float(torch.mean(t - model(x)))
    if description_length(model, RegressionObjective(), batch).total_bits > before:
        model.load_state_dict(saved)


def s2kan_discover(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    variables: Sequence[str],
    outputs: Sequence[str],
    *,
    width: Sequence[int | Sequence[int]] | str | None = None,
    transform: str = "identity",
    library: Sequence[str] | None = None,
    steps: int = 300,
    seed: int = 0,
    grid: int = 5,
    config: S2KANTrainConfig | None = None,
    basis: str = "bspline",
) -> S2KANResult:
    """Fit an S2KAN (float64) to ``x_train (N, n_in)``, ``y_train (N, n_out)``.

    ``width`` defaults to ``[n_in, n_out]`` (one layer); ``"auto"`` tries the structures of
    :func:`_structures` and keeps the one with the lowest total description length (in the
    units of ``y``). ``transform="log"`` fits an explicit ``width`` to ``log|y|`` (``y`` of one
    sign) and maps the formula back. ``steps`` sets the MDL-phase length (warm-up uses ``2/3`` of it).
    Formulas are snapped against the training data. ``basis``: the spline terms' basis family.
    """
    t0 = time.perf_counter()
    xtr, ytr, xte, yte = (_as2d(t) for t in (x_train, y_train, x_test, y_test))
    cfg = config or S2KANTrainConfig(mdl_steps=steps, warmup_steps=max(1, 2 * steps // 3))
    if width == "auto":
        structures = _structures(xtr, ytr)
    else:
        if transform not in ("identity", "log"):
            raise ValueError(f"transform: expected 'identity' or 'log', got {transform!r}")
        structures = [(list(width) if width is not None else [xtr.shape[1], ytr.shape[1]], transform)]
    best = None
    tried = []
    for w, transform in structures:
        model, dl, sign = _fit_one(xtr, ytr, variables, outputs, w, transform, library, grid, seed, cfg, basis)
        tried.append((w, transform, dl.total_bits))
        if best is None or dl.total_bits < best[1].total_bits:
            best = (model, dl, sign, transform)
    model, dl, sign, transform = best
    with torch.no_grad():
        rmse = float(torch.sqrt(torch.mean((_predict(model, xte, transform, sign) - yte) ** 2)))
    if transform == "log":
        (f,) = model.formula(x=xtr, y=torch.log(sign * ytr))
        formulas = [clean_formula(sympy.expand(int(sign) * sympy.exp(f), power_exp=True, log=False))]
    else:
        formulas = model.formula(x=xtr, y=ytr)
    return S2KANResult(model, formulas, rmse, dl, model.spline_edges(),
                       time.perf_counter() - t0, model.spline_report(), transform, tried)  # fmt: skip
