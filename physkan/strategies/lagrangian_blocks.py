"""The blocks of a structured n-DOF Lagrangian, their pruning and their symbolic fitting.

Used by :mod:`physkan.strategies.lagrangian_nd`. The candidate structure (every mass-matrix
entry as a constant plus splines of each ``q_k`` and, off the diagonal, of ``q_i − q_j``;
vector-potential components ``q̇_a · A_a(q_b)``; potential terms of each ``q_k`` and each
``q_i − q_j``) is fitted by one linear solve, then pruned greedily: a block goes when the
Euler–Lagrange residual without it stays within :data:`PRUNE_RATIO` of the residual with it
(or within :data:`START_FACTOR` of the full set's).
The surviving spline blocks are replaced by library functions ``f(a·u + b)`` (affine fits of
:func:`physkan.symbolic.fit.suggest_symbolic`, with the linear part that overlapping blocks
may trade between them absorbed by a separate linear block).
"""

from __future__ import annotations

import sympy
import torch
from torch import Tensor

from physkan.budget import current_budget
from physkan.physics.structured import (
    Block,
    Solution,
    U,
    el_columns,
    small_linalg,
    solve_blocks,
    spline_family,
    symbolic_family,
)
from physkan.symbolic.fit import suggest_symbolic
from physkan.symbolic.simplify import snap_value

__all__ = ["PRUNE_RATIO", "candidate_blocks", "constant_block", "prune", "symbolic_blocks"]

#: a block is dropped when the residual without it is at most this factor above the residual with it
PRUNE_RATIO = 1.05
#: ... or at most this factor above the residual of the full candidate set: the full set
#: over-fits the smooth errors of spline approximations and of trajectory derivatives (a
#: 2-DOF system from ``physkan simulate`` files: 4e-11 with every block, 3e-10 with the
#: true four), which would make every extra block look useful.
START_FACTOR = 10.0


def _const_family(u: Tensor) -> tuple[Tensor, Tensor]:
    one = torch.ones(u.shape[0], 1, dtype=torch.float64)
    return one, torch.zeros_like(one)


def constant_block(kind: str, i: int, j: int, n: int) -> Block:
    """The block with ``g ≡ 1`` (a constant mass-matrix entry ``M_ij``)."""
    return Block(kind, i, j, torch.zeros(n, dtype=torch.float64), _const_family, [sympy.Integer(1)],  # type: ignore[arg-type]
                 f"{kind}[{i},{j}] const")  # fmt: skip


def _directions(n: int) -> list[tuple[Tensor, str]]:
    """``u = q_k`` for each k, then ``u = q_i − q_j`` for each pair ``i < j``."""
    out = []
    for k in range(n):
        w = torch.zeros(n, dtype=torch.float64)
        w[k] = 1.0
        out.append((w, f"q{k}"))
    for i in range(n):
        for j in range(i + 1, n):
            w = torch.zeros(n, dtype=torch.float64)
            w[i], w[j] = 1.0, -1.0
            out.append((w, f"q{i}-q{j}"))
    return out


def candidate_blocks(q: Tensor, grid: int = 20) -> list[Block]:
    """Every candidate block for coordinates ``q`` ``(N, n)`` (splines span the data range of ``u``)."""
    n = q.shape[1]
    dirs = _directions(n)
    blocks: list[Block] = []

    def spline(kind: str, i: int, j: int, w: Tensor, name: str) -> Block:
        fam, width = spline_family(q @ w, grid=grid)
        return Block(kind, i, j, w, fam, [sympy.Symbol(f"B{k}") for k in range(width)], f"{kind}[{i},{j}]({name})")  # type: ignore[arg-type]

    for i in range(n):
        for j in range(i, n):
            blocks.append(constant_block("kinetic", i, j, n))
            for w, name in dirs:
                is_diff = int((w != 0).sum()) == 2
                if not is_diff or (i != j and w[i] != 0 and w[j] != 0):
                    blocks.append(spline("kinetic", i, j, w, name))
    for a in range(n):
        for w, name in dirs[:n]:
            if w[a] == 0:
                blocks.append(spline("gauge", a, a, w, name))
    for w, name in dirs:
        blocks.append(spline("potential", 0, 0, w, name))
    return blocks


def prune(cols: list[Tensor], fixed: Tensor, keep: list[int], priority, protect: set[int] | None = None) -> tuple[list[int], Solution]:
    """Backward elimination: try to drop each block in turn (by ``priority``, then smallest
    contribution first), keep it only when the residual needs it; repeat until nothing goes.

    Args:
        cols: per block, its Euler–Lagrange columns ``(R, K_b)``.
        fixed: ``(R,)`` the scale-fixing column.
        keep: the blocks to start from.
        priority: ``block index -> number``; among the blocks that can go, the lowest goes
            first (this picks the simplest of the Lagrangians that give the same equations,
            e.g. a diagonal mass matrix and a coupling potential rather than the reverse).
        protect: blocks never dropped.

    Returns:
        ``(kept blocks, their solution)``. Respects :func:`physkan.budget.current_budget`.
    """
    budget = current_budget()
    protect = protect or set()
    keep = list(keep)
    cols, fixed = compress(cols, fixed)
    best = solve_blocks(cols, fixed, keep)
    start, tol = best.residual, 1e-10
    changed = True
    while changed and len(keep) > 1 and not budget.check():
        changed = False
        size = {b: float((cols[b] @ best.coefs[b]).norm()) for b in keep}
        for b in sorted((b for b in keep if b not in protect), key=lambda b: (priority(b), size[b])):
            if budget.check() or len(keep) == 1:
                break
            trial = solve_blocks(cols, fixed, [c for c in keep if c != b])
            if trial.residual <= max(PRUNE_RATIO * best.residual, START_FACTOR * start) + tol:
                keep.remove(b)
                best, changed = trial, True
    return keep, best


def compress(cols: list[Tensor], fixed: Tensor) -> tuple[list[Tensor], Tensor]:
    """Rows ``R`` -> ``K + 1`` by one QR of ``[A | b]``: every subset least-squares residual and
    column norm is unchanged (``Q`` is orthogonal), and each later solve is tiny."""
    widths = [c.shape[1] for c in cols]
    full = torch.cat([*cols, fixed[:, None]], 1)
    if full.shape[0] <= full.shape[1]:
        return cols, fixed
    with small_linalg():
        r = torch.linalg.qr(full, mode="r").R
    parts = list(torch.split(r[:, :-1], widths, dim=1))
    return parts, r[:, -1]


def _fit_block(u: Tensor, y: Tensor, library: list[str], topk: int = 3) -> list[sympy.Expr]:
    """Library functions ``f(a·U + b)`` for the 1-D curve ``y(u)``, best first.

    The curve of a block is known up to a linear function (overlapping blocks may trade one),
    so each fit alternates an affine fit with a re-estimate of the linear trend ``e·u``.
    """
    sel = torch.linspace(0, u.shape[0] - 1, min(400, u.shape[0])).long()
    order = torch.argsort(u)
    uu, yy = u[order][sel], y[order][sel]
    e = 0.0
    out: list[sympy.Expr] = []
    for _ in range(3):
        cands = suggest_symbolic(uu, yy - e * uu, library, topk=topk, grid_number=41, iterations=2)
        if not cands:
            return []
        fit = cands[0].fit
        resid = yy - fit(uu)
        e_new = float((resid - resid.mean()) @ (uu - uu.mean()) / ((uu - uu.mean()) ** 2).sum().clamp_min(1e-300))
        out = []
        for cand in cands:
            fn = _normalise(_expr(cand.name, cand.fit.a, cand.fit.b))
            if fn.free_symbols and fn not in out:
                out.append(fn)
        if abs(e_new - e) <= 1e-6 * (float(yy.abs().max()) + 1e-300):
            break
        e = e_new
    return out


def _expr(name: str, a: float, b: float) -> sympy.Expr:
    """``f(a·U + b)`` with ``a`` and ``b`` snapped to simple numbers where they are close."""
    from physkan.symbolic.library import get_symbolic

    a_s = snap_value(a, tolerance=1e-3)
    b_s = snap_value(b, tolerance=1e-3, zero_threshold=1e-3)
    arg = (a_s if a_s is not None else sympy.Float(a)) * U + (b_s if b_s is not None else sympy.Float(b))
    return get_symbolic(name).sympy_fn(arg)


def _normalise(expr: sympy.Expr) -> sympy.Expr:
    """Drop a constant factor and (for polynomials) lower-order terms: ``3(2U+1)² -> U²``."""
    expr = sympy.expand(expr)
    if expr.is_polynomial(U):
        degree = sympy.degree(expr, U)
        return U**degree if degree >= 1 else sympy.Integer(0)
    return expr.as_independent(U, as_Add=False)[1]


def symbolic_blocks(block: Block, coef: Tensor, q: Tensor, library: list[str]) -> list[list[Block]]:
    """Alternatives for one spline block: ``[f(a·u + b) block, linear block]`` per library fit."""
    u = block.argument(q)
    g, _ = block.family(u)
    y = g @ coef
    alternatives = []
    linear = Block(block.kind, block.i, block.j, block.w, symbolic_family([U]), [U], block.label + " ~ u")
    for expr in _fit_block(u, y, library):
        if expr.is_polynomial(U) and sympy.degree(expr, U) <= 1:
            alternatives.append([linear])
            continue
        exprs = [U**d for d in range(2, int(sympy.degree(expr, U)) + 1)] if expr.is_polynomial(U) else [expr]
        sym = Block(block.kind, block.i, block.j, block.w, symbolic_family(exprs), exprs, f"{block.label} ~ {expr}")
        alternatives.append([sym, linear])
    return alternatives


def removal_priority(block: Block) -> int:
    """Order in which equally dispensable blocks go: first off-diagonal and position-dependent
    masses, then vector potentials, then potential terms; constant diagonal masses last.

    Linear systems admit several non-equivalent Lagrangians for the same equations (e.g. a
    coupled mass matrix with an uncoupled potential); this order keeps the textbook one.
    """
    const = not block.exprs or not block.exprs[0].free_symbols
    if block.kind == "kinetic" and block.i != block.j:
        return 1 if const else 0
    if block.kind == "kinetic":
        return 5 if const else 2
    return 3 if block.kind == "gauge" else 4


def columns(blocks: list[Block], state: Tensor, qddot: Tensor) -> list[Tensor]:
    """Euler–Lagrange columns of every block (see :func:`physkan.physics.structured.el_columns`)."""
    return [el_columns(b, state, qddot) for b in blocks]
