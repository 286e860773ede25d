"""Training schedule of an S2KAN on the Lightning engine, for any objective.

1. **warm-up** – splines only, the objective's plain loss, grids follow the data (a KAN fit;
   an optional *teacher* regression batch is fitted first, e.g. ``T = q̇²/2`` so that an
   Euler–Lagrange loss starts from an invertible Hessian);
2. **symbolic initialisation** – each edge's warm-up curve is matched against the library
   (:func:`~physkan.symbolic.fit.suggest_symbolic`); the ``topk`` candidates get their fitted
   ``a, b`` and the best one its ``c, d``; the spline keeps the residual; other terms are
   masked out;
3. **MDL phase** – Adam on :class:`~physkan.s2kan.objective.MDLObjective`
   (``½ log2(loss + floor) + λ(t) L_model / N``) with hard-concrete gates; ``λ`` ramps from 0
   to 1 (:class:`~physkan.s2kan.objective.MDLRamp`); gate samples that leave the objective
   undefined are redrawn, and a phase whose deterministic gates do too is undone;
4. **prune** – gates with ``P(open) < 0.5`` close for good, survivors become hard (``z = 1``);
   closed terms are re-opened (most probable first) while the objective is undefined, so a
   Lagrangian never loses its whole kinetic term;
5. **refit** – LBFGS on the survivors' continuous parameters;
6. **polish** – greedy MDL moves: close one term (then refit) or swap a spline for a library
   function, kept only when the total description length drops (short in-process LBFGS refits
   on a subsample; every other phase runs through :func:`physkan.train.fit`).

The objective is any :class:`~physkan.train.objectives.Objective`; the description length's
data cost is ``(N/2)·log2(loss + floor)`` with the objective's mean-squared residual.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from physkan.budget import current_budget
from physkan.physics.lagrangian import SingularHessianError
from physkan.s2kan.gates import open_logit
from physkan.s2kan.levenberg import levenberg_marquardt
from physkan.s2kan.mdl import MDLParts
from physkan.s2kan.model import S2KAN
from physkan.s2kan.objective import MDLObjective, MDLRamp, objective_floor
from physkan.symbolic.fit import suggest_symbolic
from physkan.train.objectives import Objective, RegressionObjective

__all__ = ["S2KANTrainConfig", "description_length", "init_symbolic", "prune", "refit", "train_s2kan"]

Batch = Mapping[str, Tensor]

#: relative error under which the flat warm-up (identity outer edges) is kept.
FLAT_GATE = 1e-2


@dataclass
class S2KANTrainConfig:
    """Knobs of :func:`train_s2kan` (steps are optimiser steps on the full batch).

    ``fit_options`` go to every :func:`physkan.train.fit` call (e.g. ``accelerator``,
    ``devices=2``, ``strategy="ddp_spawn"``).
    """

    warmup_steps: int = 200
    warmup_lr: float = 2e-2
    #: ``"adam"`` (``warmup_steps`` steps) or ``"lbfgs"`` (``warmup_steps // 10`` steps of 20
    #: iterations; better for the physics losses)
    warmup_optimizer: str = "adam"
    teacher_steps: int = 5
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
    #: stop after the warm-up when its loss exceeds ``warmup_gate² · var(target)`` (the
    #: structure cannot fit the data; ``None``: always go on)
    warmup_gate: float | None = None
    fit_options: dict[str, Any] = field(default_factory=dict)


def _rows(batch: Batch, idx: Tensor) -> dict[str, Tensor]:
    return {k: v[idx] for k, v in batch.items()}


def _n(batch: Batch) -> int:
    return int(next(iter(batch.values())).shape[0])


def _loss(model: S2KAN, objective: Objective, batch: Batch) -> Tensor:
    """The objective's loss with evaluation gates (autograd on: physics losses need it);
    ``nan`` when the objective cannot be evaluated (e.g. a singular Euler–Lagrange Hessian)."""
    was = model.training
    model.eval()
    try:
        with torch.enable_grad():
            return objective.loss(model, batch).detach()
    except (RuntimeError, ValueError):
        return torch.tensor(math.nan, dtype=torch.float64)
    finally:
        model.train(was)


def _relative_error(model: S2KAN, objective: Objective, batch: Batch) -> float:
    """``sqrt(loss / var(target))`` with the current gates (``inf`` when not finite)."""
    rel = math.sqrt(max(float(_loss(model, objective, batch)), 0.0) / objective_floor(batch, 1.0))
    return rel if math.isfinite(rel) else math.inf


def description_length(model: S2KAN, objective: Objective, batch: Batch) -> MDLParts:
    """Total description length (evaluation gates) of ``model`` on ``batch``."""
    n = _n(batch)
    loss = float(_loss(model, objective, batch))
    floor = objective_floor(batch, model.resolution)
    if not math.isfinite(loss):
        return MDLParts(math.inf, float(model.model_cost_bits(n).detach()), n, loss)
    return model.description_length(loss, n, floor)


def _fit(model: S2KAN, objective: Objective, batch: Batch, cfg: S2KANTrainConfig, **kw: Any):
    from physkan.train import fit

    model.train()  # sampled gates only where they are not hard yet (the MDL phase)
    return fit(model, objective, batch, **{**cfg.fit_options, **kw})


@contextlib.contextmanager
def _frozen(model: S2KAN, subnodes: dict[int, list[int]]):
    """Edges into ``subnodes[layer]`` get no gradient (spline and offset) while the block runs
    (the layers' ``frozen`` buffers, which DDP workers see too)."""
    with torch.no_grad():
        for lyr, subs in subnodes.items():
            if subs:
                model.layers[lyr].frozen[:, subs] = 1.0
    try:
        yield
    finally:
        with torch.no_grad():
            for layer in model.layers:
                layer.frozen.zero_()


def _products(model: S2KAN) -> dict[int, list[int]]:
    return {lyr: model.product_subnodes(lyr) for lyr in range(model.depth)}


def _flat_warmup(model: S2KAN, objective: Objective, batch: Batch, cfg: S2KANTrainConfig) -> bool:
    """Occam's first try for a deep S2KAN: every edge after the first layer is the identity
    (the output is the plain sum of the hidden nodes) and the seeded products are held. When
    that fits (relative error < ``FLAT_GATE``) the outer edges stay identities, which removes
    the ``g(h(x)) = (g∘u)(u⁻¹∘h(x))`` ambiguity of compositions. Returns whether it was kept."""
    if model.depth < 2:
        return False
    saved = copy.deepcopy(model.state_dict())
    outer = {lyr: list(range(model.layers[lyr].n_sub)) for lyr in range(1, model.depth)}
    frozen = {**_products(model), **outer}
    samples = objective.grid_samples(batch)
    rounds = max(1, cfg.grid_updates)
    for _ in range(rounds):  # grids follow the hidden nodes; the outer edges stay identities
        model.update_grids(samples)
        with torch.no_grad():
            for lyr in outer:
                layer = model.layers[lyr]
                layer.coef.copy_(layer.greville()[:, None, :].expand_as(layer.coef))
                layer.d.zero_()
        with _frozen(model, frozen):
            _fit(model, objective, batch, cfg, steps=max(1, cfg.warmup_steps // (2 * rounds)),
                 optimizer="adam", lr=cfg.warmup_lr)  # fmt: skip
    with _frozen(model, frozen):
        refit(model, objective, batch, iters=cfg.refit_iters // 2, cfg=cfg)
    rel = _relative_error(model, objective, batch)
    if cfg.verbose:
        print(f"[s2kan] flat warm-up: relative error {rel:.2e}")
    if rel < FLAT_GATE:
        return True
    model.load_state_dict(saved)
    return False


def warmup(model: S2KAN, objective: Objective, batch: Batch, cfg: S2KANTrainConfig,
           teacher: Batch | None = None) -> float:  # fmt: skip
    """Spline-only fit (symbolic terms switched off) with periodic grid updates; returns its
    relative error ``sqrt(loss / var(target))``."""
    saved = [(layer.mask.clone(), layer.hard.clone()) for layer in model.layers]
    for layer in model.layers:
        layer.mask[..., :-1] = 0.0
        layer.mask[..., -1] = 1.0
        layer.hard.fill_(1.0)
    samples = objective.grid_samples(batch)
    model.update_grids(samples)
    if teacher is not None:
        _fit(model, RegressionObjective(), teacher, cfg, steps=cfg.teacher_steps)
    elif "x" in batch and "y" in batch:  # regression: start at the right output offset
        with torch.no_grad():
            model.layers[-1].d[0] += (batch["y"] - model(batch["x"])).mean(0)
    every = max(1, cfg.warmup_steps // (2 * max(cfg.grid_updates, 1)))
    if not _flat_warmup(model, objective, batch, cfg):
        # backfitting: the seeded products (x_a·x_b) are held through the warm-up while the
        # sums fit around them, so that no sum absorbs part of a product (the MDL phase frees them)
        if cfg.warmup_optimizer == "lbfgs":
            steps = max(1, cfg.warmup_steps // 10)
            every = max(1, steps // (2 * max(cfg.grid_updates, 1)))
            opt: dict[str, Any] = {"optimizer": "lbfgs", "max_iter": 20}
        else:
            steps, opt = cfg.warmup_steps, {"optimizer": "adam", "lr": cfg.warmup_lr}
        with _frozen(model, _products(model)):
            _fit(model, objective, batch, cfg, steps=steps, grid_update_every=every,
                 grid_update_until=every * cfg.grid_updates, **opt)  # fmt: skip
        refit(model, objective, batch, iters=cfg.refit_iters // 2, cfg=cfg)
    rel = _relative_error(model, objective, batch)
    for layer, (mask, hard) in zip(model.layers, saved, strict=True):
        layer.mask.copy_(mask)
        layer.hard.copy_(hard)
    return rel


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
    model.eval()  # deterministic gates: later layers see what earlier layers now compute
    idx = _subsample(x, cfg.max_fit_points)
    for lyr, layer in enumerate(model.layers):
        xin = model.layer_inputs(x)[lyr].detach()
        xs = xin[idx]
        lib = dict(zip(layer.library, layer.functions, strict=True))
        with torch.no_grad():
            spl = layer.spline_values(xs) + layer.d  # (n, in, n_sub)
            spread = spl.std(0)  # (in, n_sub)
            flat = spread <= 1e-6 * float(spread.max().clamp_min(1e-300))
        cands = {
            (i, j): _rank(suggest_symbolic(xs[:, i].double(), spl[:, i, j].double(), lib, topk=0),
                          layer, x.shape[0], eps)[: cfg.topk]
            for i in range(layer.n_in)
            for j in range(layer.n_sub)
            if not flat[i, j]
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
            for i, j in flat.nonzero().tolist():  # a constant edge: every gate closed for good
                layer.mask[i, j] = 0.0
                layer.d[i, j] = spl[:, i, j].mean()


def _fold_exp(cand, layer, i: int, j: int, s: int) -> float:
    """``c·exp(a x + b) = (c·e^b)·exp(a x)``: fold ``b`` into ``c`` (better conditioned)."""
    if cand.name != "exp":
        return cand.fit.c
    folded = cand.fit.c * math.exp(cand.fit.b)
    if not math.isfinite(folded):
        return cand.fit.c
    layer.b[i, j, s] = 0.0
    return folded


def mdl_phase(model: S2KAN, objective: Objective, batch: Batch, cfg: S2KANTrainConfig) -> bool:
    """Adam (engine) on the MDL objective with sampled gates and a ramped model cost.

    Degenerate gate samples are redrawn by :class:`MDLObjective`; should the deterministic
    gates themselves leave the objective undefined (e.g. every velocity term of a Lagrangian
    closed: :class:`~physkan.physics.SingularHessianError`), the phase is undone and the model
    goes on from its symbolic initialisation. Returns whether the phase was kept."""
    n = _n(batch)
    mdl = MDLObjective(objective, n, objective_floor(batch, model.resolution))
    saved = copy.deepcopy(model.state_dict())
    try:
        _fit(model, mdl, batch, cfg, steps=cfg.mdl_steps, optimizer="adam", lr=cfg.lr,
             param_lr={"log_alpha": cfg.gate_lr}, callbacks=[MDLRamp(cfg.mdl_steps, cfg.ramp_fraction)])  # fmt: skip
    except SingularHessianError as err:
        model.load_state_dict(saved)
        if cfg.verbose:
            print(f"[s2kan] MDL phase undone (degenerate model: {str(err)[:80]}...)")
        return False
    return True


def prune(model: S2KAN, threshold: float = 0.5, objective: Objective | None = None,
          batch: Batch | None = None) -> list[tuple[int, int, int, int]]:  # fmt: skip
    """Close gates with ``P(open) < threshold`` for good; the rest become hard ones.

    With ``objective`` and ``batch``, pruning never leaves a model the objective cannot
    evaluate (a Lagrangian without kinetic term has a singular mass matrix): while the loss is
    not finite, the closed term with the highest ``P(open)`` is re-opened. Returns the
    re-opened terms ``(layer, in, subnode, term)``."""
    with torch.no_grad():
        prob = [layer.open_probability().detach().clone() for layer in model.layers]
        closed = []
        for lyr, (layer, p) in enumerate(zip(model.layers, prob, strict=True)):
            keep = p >= threshold
            dropped = ((layer.mask > 0) & ~keep).nonzero().tolist()
            closed += [(float(p[i, j, s]), lyr, i, j, s) for i, j, s in dropped]
            layer.mask.mul_(keep.to(layer.mask))
            layer.hard.fill_(1.0)
    reopened: list[tuple[int, int, int, int]] = []
    if objective is None or batch is None:
        return reopened
    closed.sort(reverse=True)
    for _p, lyr, i, j, s in closed:
        if math.isfinite(float(_loss(model, objective, batch))):
            return reopened
        with torch.no_grad():
            model.layers[lyr].mask[i, j, s] = 1.0
        reopened.append((lyr, i, j, s))
    if math.isfinite(float(_loss(model, objective, batch))):
        return reopened
    with torch.no_grad():  # not a closed term's fault: leave the pruning as it was
        for lyr, i, j, s in reopened:
            model.layers[lyr].mask[i, j, s] = 0.0
    return []


def _continuous(model: S2KAN) -> list[torch.nn.Parameter]:
    return [p for layer in model.layers for p in (layer.a, layer.b, layer.c, layer.d, layer.coef)]


def _keep_if_better(model: S2KAN, objective: Objective, batch: Batch, run) -> None:
    """Run ``run()``; restore the model if the loss went up, became non-finite or it failed."""
    before = copy.deepcopy(model.state_dict())
    start = float(_loss(model, objective, batch))
    try:
        run()
        end = float(_loss(model, objective, batch))
    except (RuntimeError, ValueError):  # e.g. a singular Euler–Lagrange Hessian
        end = math.nan
    if not math.isfinite(end) or (math.isfinite(start) and end > start):
        model.load_state_dict(before)


def refit(model: S2KAN, objective: Objective, batch: Batch, *, iters: int = 200,
          cfg: S2KANTrainConfig | None = None) -> None:  # fmt: skip
    """LBFGS (engine, ``iters`` iterations in steps of 20) on the objective, gates as they are;
    symbolic terms that are masked keep their values. Undone if it makes the loss worse. For
    regression, once the gates are hard and few parameters are open, a Levenberg–Marquardt
    polish follows (:mod:`physkan.s2kan.levenberg`)."""
    cfg = cfg or S2KANTrainConfig()

    def run() -> None:
        _fit(model, objective, batch, cfg, steps=max(1, iters // 20), optimizer="lbfgs", max_iter=20)

    _keep_if_better(model, objective, batch, run)
    if isinstance(objective, RegressionObjective):  # few open terms: walk narrow valleys by LM
        levenberg_marquardt(model, batch["x"], batch["y"])


def _local_refit(model: S2KAN, objective: Objective, batch: Batch, iters: int) -> None:
    """A short in-process LBFGS refit (polish moves are many and small: no trainer per move)."""
    opt = torch.optim.LBFGS(_continuous(model), lr=1.0, max_iter=iters, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15)  # fmt: skip
    model.eval()

    def closure() -> Tensor:
        opt.zero_grad()
        loss = objective.loss(model, batch)
        if torch.isfinite(loss):
            loss.backward()
        return loss

    _keep_if_better(model, objective, batch, lambda: opt.step(closure))


def _try(model: S2KAN, objective: Objective, batch: Batch, best: float, change, iters: int,
         sub: Tensor) -> float:  # fmt: skip
    """Apply ``change(model)``, refit on the rows ``sub``, keep it if the full-data
    description length drops."""
    saved = copy.deepcopy(model.state_dict())
    change(model)
    _local_refit(model, objective, _rows(batch, sub), iters)
    dl = description_length(model, objective, batch).total_bits
    if math.isfinite(dl) and dl < best - 1e-6:
        return dl
    model.load_state_dict(saved)
    return best


def polish(model: S2KAN, objective: Objective, batch: Batch, cfg: S2KANTrainConfig) -> None:
    """Greedy MDL moves after pruning: drop terms, swap splines for library functions
    (no further move once :func:`physkan.budget.current_budget` has expired)."""
    budget = current_budget()
    best = description_length(model, objective, batch).total_bits
    sub = _subsample(objective.grid_samples(batch), cfg.polish_points)
    terms = sorted(model.open_terms(), key=lambda t: t[3] != "spline")
    for lyr, i, j, name in terms:
        if budget.check():
            return
        s = -1 if name == "spline" else model.layers[lyr].library.index(name)

        def close(m: S2KAN, lyr=lyr, i=i, j=j, s=s) -> None:
            m.layers[lyr].mask[i, j, s] = 0.0

        best = _try(model, objective, batch, best, close, cfg.polish_iters, sub)
    for lyr in range(model.depth):
        layer = model.layers[lyr]
        for i in range(layer.n_in):
            for j in range(layer.n_sub):
                if budget.check():
                    return
                if bool(layer.mask[i, j].any()):
                    best = _rewrite_edge(model, objective, batch, best, (lyr, i, j), cfg, sub)


def _rewrite_edge(
    model: S2KAN,
    objective: Objective,
    batch: Batch,
    best: float,
    edge: tuple[int, int, int],
    cfg: S2KANTrainConfig,
    sub: Tensor,
) -> float:
    """Try replacing everything on ``edge`` by one library term fitted to its current curve."""
    lyr, i, j = edge
    layer = model.layers[lyr]
    model.eval()
    with torch.no_grad():
        xin = model.layer_inputs(objective.grid_samples(batch))[lyr].detach()
        idx = _subsample(xin, cfg.max_fit_points)
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
        best = _try(model, objective, batch, best, rewrite, cfg.polish_iters, sub)
        if best < before:
            current = {s}
    return best


def train_s2kan(
    model: S2KAN,
    x: Tensor | Batch,
    y: Tensor | None = None,
    cfg: S2KANTrainConfig | None = None,
    *,
    objective: Objective | None = None,
    teacher: Batch | None = None,
) -> MDLParts:
    """Run the whole schedule and return the final description length.

    Regression: ``train_s2kan(model, x (N, n_in), y (N, n_out))``. Any other loss: pass the
    objective's batch and the objective, e.g. ``train_s2kan(model, {"state": s, "qddot": a},
    objective=LagrangianObjective(), teacher={"x": s, "y": T})``.
    """
    cfg = cfg or S2KANTrainConfig()
    if isinstance(x, Mapping):
        batch: Batch = dict(x)
        objective = objective or RegressionObjective()
    else:
        if y is None:
            raise ValueError("train_s2kan: pass y with a tensor x, or a batch dict and an objective")
        batch = {"x": x, "y": y}
        objective = objective or RegressionObjective()
    torch.manual_seed(model.seed)

    def report(stage: str) -> None:
        if cfg.verbose:
            dl = description_length(model, objective, batch)
            print(f"[s2kan] {stage}: loss={dl.mse:.3g} DL={dl.total_bits:.1f} terms={model.open_terms()}")

    rel = warmup(model, objective, batch, cfg, teacher)
    if cfg.warmup_gate is not None and not rel < cfg.warmup_gate:
        report(f"warm-up leaves relative error {rel:.1e}; stopping")
        with torch.no_grad():  # the model is its warm-up splines
            for layer in model.layers:
                layer.mask[..., :-1] = 0.0
                layer.hard.fill_(1.0)
        model.eval()
        return description_length(model, objective, batch)
    init_symbolic(model, objective.grid_samples(batch), cfg, eps=cfg.rank_eps)
    report("init")
    mdl_phase(model, objective, batch, cfg)
    report("mdl")
    reopened = prune(model, objective=objective, batch=batch)
    if reopened:
        report(f"prune re-opened {reopened} (the objective needs them)")
    refit(model, objective, batch, iters=cfg.refit_iters, cfg=cfg)
    report("prune+refit")
    if cfg.polish:
        polish(model, objective, batch, cfg)
        refit(model, objective, batch, iters=cfg.refit_iters, cfg=cfg)
        report("polish")
    model.eval()
    return description_length(model, objective, batch)
