"""Training schedule of an S2KAN (plain torch: Adam, then LBFGS).

1. **warm-up** – splines only, mean-squared error, grids follow the data (a plain KAN fit);
2. **symbolic initialisation** – each edge's warm-up curve is matched against the library
   (:func:`~physkan.symbolic.fit.suggest_symbolic`); the ``topk`` candidates get their fitted
   ``a, b`` and the best one its ``c, d``; the spline keeps the residual; other terms are
   masked out;
3. **MDL phase** – Adam on ``L_data + λ(t) L_model`` per point with hard-concrete gates;
   ``λ`` ramps from 0 to 1 (first without the model cost, then ramped in);
4. **prune** – gates with ``P(open) < 0.5`` close for good, survivors become hard (``z = 1``);
5. **refit** – LBFGS on the survivors' continuous parameters;
6. **polish** – greedy MDL moves: close one term (then refit) or swap a spline for a library
   function, kept only when the total description length drops.

The model cost is exposed as ``model.model_cost_bits(n)`` so other engines can add it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from physkan.s2kan.gates import open_logit
from physkan.s2kan.mdl import MDLParts, data_cost_bits, precision_floor
from physkan.s2kan.model import S2KAN
from physkan.symbolic.fit import suggest_symbolic

__all__ = ["S2KANTrainConfig", "description_length", "init_symbolic", "prune", "refit", "train_s2kan"]


@dataclass
class S2KANTrainConfig:
    """Knobs of :func:`train_s2kan` (steps are optimiser steps on the full batch)."""

    warmup_steps: int = 200
    warmup_lr: float = 2e-2
    mdl_steps: int = 300
    ramp_fraction: float = 0.5
    lr: float = 2e-3
    gate_lr: float = 5e-2
    grid_updates: int = 4
    topk: int = 4
    refit_iters: int = 100
    polish: bool = True
    polish_iters: int = 40
    polish_points: int = 300
    max_fit_points: int = 256
    verbose: bool = False
    rank_eps: float = 1e-4


def _mse(model: S2KAN, x: Tensor, y: Tensor) -> Tensor:
    return torch.mean((model(x) - y) ** 2)


def description_length(model: S2KAN, x: Tensor, y: Tensor) -> MDLParts:
    """Total description length (evaluation gates) of ``model`` on ``x (N, in)``, ``y (N, out)``."""
    was = model.training
    model.eval()
    with torch.no_grad():
        mse = float(_mse(model, x, y))
    model.train(was)
    return model.description_length(mse, x.shape[0], precision_floor(y, model.resolution))


def warmup(model: S2KAN, x: Tensor, y: Tensor, cfg: S2KANTrainConfig) -> None:
    """Spline-only fit (symbolic terms switched off) with periodic grid updates."""
    saved = [(layer.mask.clone(), layer.hard.clone()) for layer in model.layers]
    for layer in model.layers:
        layer.mask[..., :-1] = 0.0
        layer.mask[..., -1] = 1.0
        layer.hard.fill_(1.0)
    params = [p for layer in model.layers for p in (layer.coef, layer.d)]
    model.update_grids(x)
    with torch.no_grad():  # start at the right output offset
        model.layers[-1].d[0] += (y - model(x)).mean(0)
    opt = torch.optim.Adam(params, lr=cfg.warmup_lr)
    every = max(1, cfg.warmup_steps // (2 * max(cfg.grid_updates, 1)))
    model.train()
    for step in range(cfg.warmup_steps):
        if step and step % every == 0 and step // every < cfg.grid_updates:
            model.update_grids(x)
        opt.zero_grad()
        loss = _mse(model, x, y)
        loss.backward()
        opt.step()
    refit(model, x, y, iters=cfg.refit_iters // 2, params=params)
    for layer, (mask, hard) in zip(model.layers, saved, strict=True):
        layer.mask.copy_(mask)
        layer.hard.copy_(hard)


def _subsample(x: Tensor, n: int) -> Tensor:
    if x.shape[0] <= n:
        return torch.arange(x.shape[0])
    return torch.linspace(0, x.shape[0] - 1, n).long()


def _rank(cands: list, layer, n: int, eps: float) -> list:
    """Order candidates by an MDL-like score: ``(n/2)·log2(max(1 - r², eps)) + bits``.

    ``eps`` is the relative precision of the warm-up curves, so differences in r² below what
    the spline can resolve do not beat a simpler function."""
    from physkan.s2kan.mdl import layer_term_bits

    bits = layer_term_bits(layer, n).tolist()

    def score(c) -> float:
        s = layer.library.index(c.name)
        return 0.5 * n * math.log2(max(1.0 - c.fit.r2, eps)) + bits[s]

    return sorted(cands, key=score)


def init_symbolic(model: S2KAN, x: Tensor, cfg: S2KANTrainConfig, eps: float = 1e-4) -> None:
    """Initialise every edge's symbolic terms from its warm-up spline (layer by layer);
    ``eps`` is the relative precision of the warm-up fit (see :func:`_rank`)."""
    hi, lo = open_logit(0.98), open_logit(0.5)
    idx = _subsample(x, cfg.max_fit_points)
    for lyr, layer in enumerate(model.layers):
        xin = model.layer_inputs(x)[lyr].detach()
        xs = xin[idx]
        lib = dict(zip(layer.library, layer.functions, strict=True))
        with torch.no_grad():
            spl = layer.spline_values(xs) + layer.d  # (n, in, n_sub)
        cands = {
            (i, j): _rank(suggest_symbolic(xs[:, i].double(), spl[:, i, j].double(), lib, topk=0),
                          layer, x.shape[0], eps)[: cfg.topk]
            for i in range(layer.n_in)
            for j in range(layer.n_sub)
        }  # fmt: skip
        with torch.no_grad():
            layer.mask[..., :-1] = 0.0
            layer.c.zero_()
            layer.log_alpha.fill_(-6.0)
            layer.log_alpha[..., -1] = lo
            residual = spl.clone()
            for (i, j), ranked in cands.items():
                for rank, cand in enumerate(ranked):
                    s = layer.library.index(cand.name)
                    layer.mask[i, j, s] = 1.0
                    layer.a[i, j, s] = cand.fit.a
                    layer.b[i, j, s] = cand.fit.b
                    layer.log_alpha[i, j, s] = hi if rank == 0 else lo
                    if rank == 0:
                        layer.c[i, j, s] = _fold_exp(cand, layer, i, j, s)
                        layer.d[i, j] = cand.fit.d
                        residual[:, i, j] -= cand.fit(xs[:, i].double()).to(residual)
            if layer.use_spline:
                layer.fit_spline(xs, residual)


def _fold_exp(cand, layer, i: int, j: int, s: int) -> float:
    """``c·exp(a x + b) = (c·e^b)·exp(a x)``: fold ``b`` into ``c`` (better conditioned)."""
    if cand.name != "exp":
        return cand.fit.c
    folded = cand.fit.c * math.exp(cand.fit.b)
    if not math.isfinite(folded):
        return cand.fit.c
    layer.b[i, j, s] = 0.0
    return folded


def _ramp(step: int, total: int, fraction: float) -> float:
    """λ: 0 for the first third of the ramp window, then linear to 1 at ``fraction·total``."""
    start = fraction * total / 3
    end = max(fraction * total, start + 1)
    return min(max((step - start) / (end - start), 0.0), 1.0)


def mdl_phase(model: S2KAN, x: Tensor, y: Tensor, cfg: S2KANTrainConfig) -> None:
    """Adam on ``½ log2(MSE + floor) + λ(t) · L_model / N`` with sampled gates."""
    n = x.shape[0]
    floor = precision_floor(y, model.resolution)
    gates = [layer.log_alpha for layer in model.layers]
    others = [p for n_, p in model.named_parameters() if not n_.endswith("log_alpha")]
    opt = torch.optim.Adam([{"params": others}, {"params": gates, "lr": cfg.gate_lr}], lr=cfg.lr)
    model.train()
    for step in range(cfg.mdl_steps):
        lam = _ramp(step, cfg.mdl_steps, cfg.ramp_fraction)
        opt.zero_grad()
        data = data_cost_bits(_mse(model, x, y), 1, floor)
        loss = data + lam * model.model_cost_bits(n) / n
        loss.backward()
        opt.step()


def prune(model: S2KAN, threshold: float = 0.5) -> None:
    """Close gates with ``P(open) < threshold`` for good; the rest become hard ones."""
    with torch.no_grad():
        for layer in model.layers:
            keep = layer.open_probability() >= threshold
            layer.mask.mul_(keep.to(layer.mask))
            layer.hard.fill_(1.0)


def refit(model: S2KAN, x: Tensor, y: Tensor, *, iters: int = 200, params: list | None = None) -> None:
    """LBFGS on the mean-squared error (gates as they are)."""
    if params is None:
        params = [p for layer in model.layers for p in (layer.a, layer.b, layer.c, layer.d, layer.coef)]
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=iters, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15)  # fmt: skip
    model.eval()

    def closure() -> Tensor:
        opt.zero_grad()
        loss = _mse(model, x, y)
        if torch.isfinite(loss):
            loss.backward()
        return loss

    before = copy.deepcopy(model.state_dict())
    start = float(_mse(model, x, y).detach())
    opt.step(closure)
    end = float(_mse(model, x, y).detach())
    if not math.isfinite(end) or end > start:
        model.load_state_dict(before)


def _try(model: S2KAN, x: Tensor, y: Tensor, best: float, change, iters: int, sub: Tensor) -> float:
    """Apply ``change(model)``, refit on the rows ``sub``, keep it if the full-data
    description length drops."""
    saved = copy.deepcopy(model.state_dict())
    change(model)
    refit(model, x[sub], y[sub], iters=iters)
    dl = description_length(model, x, y).total_bits
    if math.isfinite(dl) and dl < best - 1e-6:
        return dl
    model.load_state_dict(saved)
    return best


def polish(model: S2KAN, x: Tensor, y: Tensor, cfg: S2KANTrainConfig) -> None:
    """Greedy MDL moves after pruning: drop terms, swap splines for library functions."""
    best = description_length(model, x, y).total_bits
    sub = _subsample(x, cfg.polish_points)
    terms = sorted(model.open_terms(), key=lambda t: t[3] != "spline")
    for lyr, i, j, name in terms:
        s = -1 if name == "spline" else model.layers[lyr].library.index(name)

        def close(m: S2KAN, lyr=lyr, i=i, j=j, s=s) -> None:
            m.layers[lyr].mask[i, j, s] = 0.0

        best = _try(model, x, y, best, close, cfg.polish_iters, sub)
    for lyr in range(model.depth):
        layer = model.layers[lyr]
        for i in range(layer.n_in):
            for j in range(layer.n_sub):
                if bool(layer.mask[i, j].any()):
                    best = _rewrite_edge(model, x, y, best, (lyr, i, j), cfg, sub)


def _rewrite_edge(
    model: S2KAN,
    x: Tensor,
    y: Tensor,
    best: float,
    edge: tuple[int, int, int],
    cfg: S2KANTrainConfig,
    sub: Tensor,
) -> float:
    """Try replacing everything on ``edge`` by one library term fitted to its current curve."""
    lyr, i, j = edge
    layer = model.layers[lyr]
    model.eval()
    xin = model.layer_inputs(x)[lyr].detach()
    idx = _subsample(xin, cfg.max_fit_points)
    with torch.no_grad():
        g = layer.edge_values(xin[idx])[:, i, j]
    lib = dict(zip(layer.library, layer.functions, strict=True))
    current = {int(s) for s in layer.mask[i, j].nonzero().flatten()}
    for cand in suggest_symbolic(xin[idx, i].double(), g.double(), lib, topk=cfg.topk):
        s = layer.library.index(cand.name)
        if current == {s}:
            continue

        def rewrite(m: S2KAN, s=s, fit=cand.fit) -> None:
            lay = m.layers[lyr]
            with torch.no_grad():
                lay.mask[i, j] = 0.0
                lay.mask[i, j, s] = 1.0
                lay.a[i, j, s], lay.b[i, j, s], lay.c[i, j, s] = fit.a, fit.b, fit.c
                lay.d[i, j] = fit.d

        before = best
        best = _try(model, x, y, best, rewrite, cfg.polish_iters, sub)
        if best < before:
            current = {s}
    return best


def train_s2kan(model: S2KAN, x: Tensor, y: Tensor, cfg: S2KANTrainConfig | None = None) -> MDLParts:
    """Run the whole schedule on ``x (N, n_in)``, ``y (N, n_out)``; returns the final MDL."""
    cfg = cfg or S2KANTrainConfig()
    torch.manual_seed(model.seed)

    def report(stage: str) -> None:
        if cfg.verbose:
            dl = description_length(model, x, y)
            print(f"[s2kan] {stage}: mse={dl.mse:.3g} DL={dl.total_bits:.1f} terms={model.open_terms()}")

    warmup(model, x, y, cfg)
    init_symbolic(model, x, cfg, eps=cfg.rank_eps)
    report("init")
    mdl_phase(model, x, y, cfg)
    report("mdl")
    prune(model)
    refit(model, x, y, iters=cfg.refit_iters)
    report("prune+refit")
    if cfg.polish:
        polish(model, x, y, cfg)
        refit(model, x, y, iters=cfg.refit_iters)
        report("polish")
    model.eval()
    return description_length(model, x, y)
