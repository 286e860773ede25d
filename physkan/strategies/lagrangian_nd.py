"""Exact Lagrangians for several degrees of freedom: structured blocks, one linear solve each.

Route (see :mod:`physkan.physics.structured` for the model ``L = ½q̇ᵀM(q)q̇ + A(q)·q̇ − V(q)``):

1. **Spline stage.** Every candidate block (mass-matrix entries as constants plus splines of
   each ``q_k`` and of ``q_i − q_j``; vector-potential components; potential terms of each
   ``q_k`` and ``q_i − q_j``) is fitted at once: the Euler–Lagrange equations are linear in
   the spline coefficients, so this "KAN training" is one least-squares solve. The scale of
   ``L`` is fixed by the term ``½ q̇_f²`` (coefficient 1; the first coordinate whose fit
   is good), i.e. the first constant diagonal mass entry is 1.
2. **Structure.** Greedy backward elimination keeps the blocks the data need — the
   additive-separability and ``q_i − q_j`` symmetry decisions of the discovery engine, made
   on the Euler–Lagrange residual itself.
3. **Symbolic stage.** Each surviving spline becomes a library function ``f(a·u + b)``
   (affine fit, ``a``/``b`` snapped), the block coefficients are re-solved (linear again),
   unneeded blocks are pruned and the constants snapped when the residual allows it.

The route gives up (returns ``None``) when the spline stage cannot explain the data (e.g. a
relativistic kinetic term), and :func:`physkan.strategies.lagrangian.discover_lagrangian`
falls back to its general KAN. Every stage respects :func:`physkan.budget.current_budget`.
"""

from __future__ import annotations

import sympy
import torch
from torch import Tensor

from physkan.budget import current_budget
from physkan.physics.structured import Block, Solution, small_linalg, solve_blocks
from physkan.problems import Dataset, ProblemSpec
from physkan.strategies.base import Discovery, Reporter
from physkan.strategies.lagrangian_blocks import (
    candidate_blocks,
    columns,
    prune,
    removal_priority,
    symbolic_blocks,
)
from physkan.symbolic.simplify import snap_value

__all__ = ["block_formula", "block_lagrangian", "discover_lagrangian_nd", "spline_model"]

#: the spline stage must explain the accelerations to this relative residual, else give up.
SPLINE_GATE = 0.05
#: most samples used by the solves (rows = samples × degrees of freedom).
MAX_SAMPLES = 2000


def _velocity_factor(block: Block, v: Tensor) -> Tensor:
    if block.kind == "kinetic":
        return v[:, block.i] * v[:, block.j] if block.i != block.j else 0.5 * v[:, block.i] ** 2
    if block.kind == "gauge":
        return v[:, block.i]
    return torch.ones(v.shape[0], dtype=v.dtype)


def block_lagrangian(blocks: list[Block], coefs: list[Tensor], fixed: Block):
    """The fitted Lagrangian as a torch callable ``(N, 2n) -> (N,)`` (for rollouts)."""
    n = fixed.w.shape[0]

    def L(x: Tensor) -> Tensor:
        q, v = x[:, :n], x[:, n:]
        out = _velocity_factor(fixed, v)
        for b, c in zip(blocks, coefs, strict=True):
            if c.abs().sum() > 0:
                g, _ = b.family(b.argument(q))
                out = out + _velocity_factor(b, v) * (g @ c.to(x))
        return out

    return L


def block_formula(blocks: list[Block], coefs: list[Tensor], fixed: Block, coordinates: list[str]) -> sympy.Expr:
    """``½ q̇_f² + Σ_b c_b · φ_b`` as a sympy expression in the problem's plain symbols."""
    qs = [sympy.Symbol(c) for c in coordinates]
    vs = [sympy.Symbol(f"{c}_dot") for c in coordinates]
    expr = fixed.sympy_terms(qs, vs)[0]
    for b, c in zip(blocks, coefs, strict=True):
        for term, value in zip(b.sympy_terms(qs, vs), c.tolist(), strict=True):
            if value != 0:
                expr += sympy.Float(value) * term
    return sympy.expand(expr)


def _subsample(data: Dataset) -> tuple[Tensor, Tensor]:
    state, qddot = data.x_train, data.extras["qddot_train"]
    if state.shape[0] > MAX_SAMPLES:
        idx = torch.linspace(0, state.shape[0] - 1, MAX_SAMPLES).long()
        state, qddot = state[idx], qddot[idx]
    return state.to(torch.float64), qddot.to(torch.float64)


def _spline_stage(state: Tensor, qddot: Tensor, say: Reporter) -> tuple[list[Block], list[Tensor], int, list[int], Solution]:
    n = qddot.shape[1]
    blocks = candidate_blocks(state[:, :n])
    cols = columns(blocks, state, qddot)
    best: tuple[float, int] | None = None
    for f in range(n):
        fixed = next(i for i, b in enumerate(blocks) if b.kind == "kinetic" and b.i == b.j == f and not b.w.any())
        res = solve_blocks(cols, cols[fixed][:, 0], [i for i in range(len(blocks)) if i != fixed]).residual
        say(f"scale fixed by the mass of coordinate {f}: residual {res:.1e}")
        if best is None or res < best[0]:
            best = (res, fixed)
        if res < SPLINE_GATE:
            break
    assert best is not None
    fixed = best[1]
    keep = [i for i in range(len(blocks)) if i != fixed]
    say(f"spline stage: {len(keep)} candidate blocks, relative Euler-Lagrange residual {best[0]:.1e}")
    kept, sol = prune(cols, cols[fixed][:, 0], keep, lambda b: removal_priority(blocks[b]))
    say(f"kept {len(kept)} blocks: " + ", ".join(blocks[i].label for i in kept) + f" (residual {sol.residual:.1e})")
    return blocks, cols, fixed, kept, sol


def _snap_coefs(cols: list[Tensor], fixed: Tensor, sol: Solution, keep: list[int]) -> list[Tensor]:
    """Snap the coefficients to simple numbers when the residual allows it (else keep floats).

    The boldest snapping (relative tolerance 1e-2, then 1e-3, 1e-4) whose Euler–Lagrange
    residual stays within 1.5x the least-squares one (plus 1e-9) wins.
    """
    rhs = -fixed
    norm_b = float(rhs.norm()) or 1.0
    for tol in (1e-2, 1e-3, 1e-4):
        snapped = []
        for c in sol.coefs:
            vals = [snap_value(float(v), tolerance=tol, zero_threshold=1e-9) for v in c.tolist()]
            snapped.append(torch.tensor([float(s) if s is not None else float(v) for s, v in zip(vals, c.tolist(), strict=True)],
                                        dtype=torch.float64))  # fmt: skip
        res = float((sum(cols[b] @ snapped[b] for b in keep) - rhs).norm()) / norm_b
        if res <= 1.5 * sol.residual + 1e-9:
            return snapped
    return sol.coefs


def _symbolic_stage(blocks: list[Block], sol: Solution, kept: list[int], fixed_block: Block, state: Tensor,
                    qddot: Tensor, library: list[str], say: Reporter) -> tuple[list[Block], list[Tensor], float]:  # fmt: skip
    n = qddot.shape[1]
    q = state[:, :n]
    fixed = columns([fixed_block], state, qddot)[0][:, 0]
    base = [blocks[i] for i in kept if not blocks[i].exprs[0].free_symbols]  # constant blocks
    options = [symbolic_blocks(blocks[i], sol.coefs[i], q, library) for i in kept if blocks[i].exprs[0].free_symbols]
    choice = [0] * len(options)

    def assemble(ch: list[int]) -> list[Block]:
        out = list(base)
        for opts, c in zip(options, ch, strict=True):
            if opts:
                out.extend(opts[c])
        return out

    def residual(ch: list[int]) -> float:
        bl = assemble(ch)
        return solve_blocks(columns(bl, state, qddot), fixed).residual

    budget = current_budget()
    current = residual(choice)
    for k, opts in enumerate(options):
        for alt in range(1, len(opts)):
            if budget.check():
                break
            trial = choice.copy()
            trial[k] = alt
            r = residual(trial)
            if r < 0.5 * current:
                choice, current = trial, r
    sym = assemble(choice)
    cols = columns(sym, state, qddot)
    keep, best = prune(cols, fixed, list(range(len(sym))), lambda b: removal_priority(sym[b]))
    coefs = _snap_coefs(cols, fixed, best, keep)
    say(f"symbolic stage: {len(keep)} terms, relative Euler-Lagrange residual {best.residual:.1e}")
    return [sym[i] for i in keep], [coefs[i] for i in keep], best.residual


def spline_model(data: Dataset) -> tuple[object, float]:
    """The learned numeric Lagrangian of the spline stage (pruned blocks) and its residual.

    Returns:
        ``(L, residual)``: ``L`` maps ``(N, 2n) -> (N,)`` (scale: ``½ q̇_f²`` has weight 1).
    """
    with small_linalg():
        state, qddot = _subsample(data)
        blocks, _, fixed, kept, sol = _spline_stage(state, qddot, lambda _m: None)
    return block_lagrangian([blocks[i] for i in kept], [sol.coefs[i] for i in kept], blocks[fixed]), sol.residual


def discover_lagrangian_nd(spec: ProblemSpec, data: Dataset, say: Reporter) -> Discovery | None:
    """Structured discovery of an n-DOF Lagrangian; ``None`` when the structure does not fit.

    Runs on one torch thread (:func:`physkan.physics.structured.small_linalg`): every tensor
    here is small, so threads only add waiting, and the answer is then bit-identical at any
    thread count.
    """
    with small_linalg():
        return _discover(spec, data, say)


def _discover(spec: ProblemSpec, data: Dataset, say: Reporter) -> Discovery | None:
    from physkan.strategies.lagrangian_check import lagrangian_discovery

    coords = list(spec.system.coordinates)
    state, qddot = _subsample(data)
    say(f"structured Lagrangian search over {len(coords)} degrees of freedom")
    blocks, _, fixed, kept, sol = _spline_stage(state, qddot, say)
    if sol.residual > SPLINE_GATE:
        say(f"the structured form does not fit (residual {sol.residual:.1e}); falling back to a general KAN")
        return None
    model = block_lagrangian([blocks[i] for i in kept], [sol.coefs[i] for i in kept], blocks[fixed])
    sym, coefs, res = _symbolic_stage(blocks, sol, kept, blocks[fixed], state, qddot, list(spec.discover.library), say)
    complete = res <= 2.0 * sol.residual + 1e-9
    expr = block_formula(sym, coefs, blocks[fixed], coords)
    return lagrangian_discovery(spec, data, expr, complete, model, {"spline_residual": sol.residual,
                                                                    "symbolic_residual": res})  # fmt: skip
