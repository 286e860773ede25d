"""L-BFGS without ``torch.optim``: the algorithm of ``torch.optim.LBFGS``, op for op.

Why a second copy of a stock optimiser: constructing any ``torch.optim.Optimizer`` imports
``torch._dynamo`` (``Optimizer.__init__`` is wrapped in ``torch._disable_dynamo``), which
costs about 2 s of wall time per process on a small CPU machine, more than the whole
tutorial discovery's training. Discovery's plain training loop (:mod:`physkan.train.plain`)
makes many tiny full-batch LBFGS fits in one short-lived process, so it uses this class
instead; the Lightning engine (which imports ``torch._dynamo`` anyway) keeps
``torch.optim.LBFGS``.

:class:`LBFGS` runs the same two-loop recursion, the same strong-Wolfe line search (cubic
interpolation, ``c1=1e-4``, ``c2=0.9``, ``max_ls = max_eval - evaluations so far``), the
same defaults (``max_eval = max_iter * 5 // 4``) and the same stopping tests, with the same
tensor operations in the same order, so its iterates equal ``torch.optim.LBFGS``'s bit for
bit on the CPU (``tests/test_train_lbfgs.py`` compares both, with and without the line
search). Only what physkan uses is supported: one parameter group of real dense tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import torch
from torch import Tensor

__all__ = ["LBFGS"]

Closure = Callable[[], Tensor]


def _cubic_interpolate(x1: Any, f1: Any, g1: Any, x2: Any, f2: Any, g2: Any,
                       bounds: tuple[Any, Any] | None = None) -> Any:  # fmt: skip
    """Minimiser of the cubic through ``(x1, f1, g1)`` and ``(x2, f2, g2)``, clipped to
    ``bounds`` (default: the interval between ``x1`` and ``x2``); scalars or 0-dim tensors."""
    if bounds is not None:
        lo, hi = bounds
    else:
        lo, hi = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square < 0:
        return (lo + hi) / 2.0
    d2 = d2_square.sqrt()
    if x1 <= x2:
        pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(pos, lo), hi)


def _clone(t: Tensor) -> Tensor:
    return t.clone(memory_format=torch.contiguous_format)


def _zoom(obj: Callable[[Any], tuple[float, Tensor]], d: Tensor, f: float, gtd: Tensor,
          br: list[list[Any]], ls_iter: int, max_ls: int, tolerance_change: float,
          c1: float, c2: float) -> tuple[int, int]:  # fmt: skip
    """Zoom phase of :func:`strong_wolfe` on the bracket ``br = [t, f, g, gtd]`` (lists of
    two, updated in place) after ``ls_iter`` searches; returns ``(low position, evaluations)``."""
    t_b, f_b, g_b, gtd_b = br
    d_norm = d.abs().max()
    evals, insuf_progress = 0, False
    low, high = (0, 1) if f_b[0] <= f_b[-1] else (1, 0)
    while ls_iter < max_ls:
        if abs(t_b[1] - t_b[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(t_b[0], f_b[0], gtd_b[0], t_b[1], f_b[1], gtd_b[1])
        # too close to a bound twice, or on it: move 10 % of the bracket inside
        eps = 0.1 * (max(t_b) - min(t_b))
        if min(max(t_b) - t, t - min(t_b)) < eps:
            if insuf_progress or t >= max(t_b) or t <= min(t_b):
                t = max(t_b) - eps if abs(t - max(t_b)) < abs(t - min(t_b)) else min(t_b) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj(t)
        evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= f_b[low]:  # not Armijo, or not lower
            t_b[high], f_b[high], g_b[high], gtd_b[high] = t, f_new, _clone(g_new), gtd_new
            low, high = (0, 1) if f_b[0] <= f_b[1] else (1, 0)
            continue
        done = abs(gtd_new) <= -c2 * gtd
        if not done and gtd_new * (t_b[high] - t_b[low]) >= 0:  # old high becomes new low
            t_b[high], f_b[high], g_b[high], gtd_b[high] = t_b[low], f_b[low], g_b[low], gtd_b[low]
        t_b[low], f_b[low], g_b[low], gtd_b[low] = t, f_new, _clone(g_new), gtd_new
        if done:
            break
    return low, evals


def strong_wolfe(obj: Callable[[Any], tuple[float, Tensor]], t: Any, d: Tensor, f: float, g: Tensor,
                 gtd: Tensor, c1: float = 1e-4, c2: float = 0.9, tolerance_change: float = 1e-9,
                 max_ls: int = 25) -> tuple[float, Tensor, Any, int]:  # fmt: skip
    """Strong-Wolfe line search along ``d`` (``torch.optim.lbfgs._strong_wolfe``).

    Args:
        obj: ``t -> (loss, flat gradient (P,))`` at ``x + t d`` (parameters restored after).
        t: first step length; d: direction ``(P,)``; f, g, gtd: loss, gradient ``(P,)`` and
            directional derivative at ``t = 0``.

    Returns:
        ``(loss, gradient (P,), step length, evaluations)`` of the accepted point.
    """
    g = _clone(g)
    f_new, g_new = obj(t)
    evals = 1
    gtd_new = g_new.dot(d)
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done, ls_iter = False, 0
    bracket: list[list[Any]] | None = None
    while ls_iter < max_ls:  # bracket an interval containing a point satisfying the Wolfe criteria
        if not (f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev)):
            if abs(gtd_new) <= -c2 * gtd:  # torch's order: Armijo, Wolfe, then the slope
                bracket, done = [[t], [f_new], [g_new], [gtd_new]], True
                break
            if not gtd_new >= 0:
                tmp = t
                t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                                       bounds=(t + 0.01 * (t - t_prev), t * 10))  # fmt: skip
                t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, _clone(g_new), gtd_new
                f_new, g_new = obj(t)
                evals += 1
                gtd_new = g_new.dot(d)
                ls_iter += 1
                continue
        bracket = [[t_prev, t], [f_prev, f_new], [g_prev, _clone(g_new)], [gtd_prev, gtd_new]]
        break
    if done:
        return f_new, g_new, t, evals
    if bracket is None:  # ran out of evaluations: [0, t] (torch keeps no slopes here)
        bracket = [[0, t], [f, f_new], [g, g_new], [None, None]]
    low, more = _zoom(obj, d, f, gtd, bracket, ls_iter, max_ls, tolerance_change, c1, c2)
    return bracket[1][low], bracket[2][low], bracket[0][low], evals + more


class LBFGS:
    """``torch.optim.LBFGS`` for one group of real dense parameters, without ``torch.optim``.

    Same constructor arguments and defaults, ``step(closure)`` (returns the closure's first
    loss of the step), ``zero_grad()`` (sets gradients to ``None``) and a ``state`` dict
    (``state.clear()`` forgets the curvature history) — see the module doc for why.
    """

    def __init__(self, params: Iterable[Tensor], lr: float = 1, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None) -> None:  # fmt: skip
        self.params = list(params)
        if not self.params:
            raise ValueError("LBFGS got an empty parameter list")
        if any(p.is_complex() or p.is_sparse for p in self.params):
            raise ValueError("this LBFGS supports real dense parameters only")
        if not lr >= 0.0:  # NaN too
            raise ValueError(f"Invalid learning rate: {lr}")
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"line_search_fn must be None or 'strong_wolfe', got {line_search_fn!r}")
        self.lr, self.max_iter = lr, max_iter
        self.max_eval = max_eval if max_eval is not None else max_iter * 5 // 4
        self.tolerance_grad, self.tolerance_change = tolerance_grad, tolerance_change
        self.history_size, self.line_search_fn = history_size, line_search_fn
        #: curvature history and counters between steps (``torch.optim.LBFGS``'s state)
        self.state: dict[str, Any] = {}

    def zero_grad(self) -> None:
        """Set every parameter's gradient to ``None`` (as ``Optimizer.zero_grad()``)."""
        for p in self.params:
            p.grad = None

    def _flat_grad(self) -> Tensor:
        """Gradients of all parameters as one vector ``(P,)`` (zeros where ``None``)."""
        return torch.cat([p.new(p.numel()).zero_() if p.grad is None else p.grad.view(-1) for p in self.params], 0)

    def _add(self, step: Any, update: Tensor) -> None:
        offset = 0
        for p in self.params:
            p.add_(update[offset : offset + p.numel()].view_as(p), alpha=step)
            offset += p.numel()

    def _evaluate_at(self, closure: Closure, x: list[Tensor], t: Any, d: Tensor) -> tuple[float, Tensor]:
        """Loss and flat gradient at ``x + t d``; the parameters are put back to ``x``."""
        self._add(t, d)
        loss = float(closure().detach())
        flat_grad = self._flat_grad()
        for p, v in zip(self.params, x, strict=True):
            p.copy_(v)
        return loss, flat_grad

    def _direction(self, flat_grad: Tensor, s: dict[str, Any]) -> Tensor:
        """The L-BFGS direction ``-H g`` (two-loop recursion), updating the history in ``s``."""
        if s["n_iter"] == 1:
            s.update(old_dirs=[], old_stps=[], ro=[], H_diag=1)
            return flat_grad.neg()
        y = flat_grad.sub(s["prev_flat_grad"])
        step = s["d"].mul(s["t"])
        ys = y.dot(step)
        dirs, stps, ro = s["old_dirs"], s["old_stps"], s["ro"]
        if ys > 1e-10:
            if len(dirs) == self.history_size:
                dirs.pop(0), stps.pop(0), ro.pop(0)
            dirs.append(y), stps.append(step), ro.append(1.0 / ys)
            s["H_diag"] = ys / y.dot(y)
        al = s.setdefault("al", [None] * self.history_size)
        q = flat_grad.neg()
        for i in range(len(dirs) - 1, -1, -1):
            al[i] = stps[i].dot(q) * ro[i]
            q.add_(dirs[i], alpha=-al[i])
        r = torch.mul(q, s["H_diag"])
        for i in range(len(dirs)):
            be_i = dirs[i].dot(r) * ro[i]
            r.add_(stps[i], alpha=al[i] - be_i)
        return r

    @torch.no_grad()
    def step(self, closure: Closure) -> Tensor:
        """Up to ``max_iter`` L-BFGS iterations; ``closure`` zeroes the gradients, computes
        the loss, back-propagates and returns the loss (0-dim). Returns the first loss."""
        closure = torch.enable_grad()(closure)
        s = self.state
        s.setdefault("func_evals", 0)
        s.setdefault("n_iter", 0)
        orig_loss = closure()
        loss = float(orig_loss.detach())
        current_evals = 1
        s["func_evals"] += 1
        flat_grad = self._flat_grad()
        if flat_grad.abs().max() <= self.tolerance_grad:
            return orig_loss
        n_iter = 0
        while n_iter < self.max_iter:
            n_iter += 1
            s["n_iter"] += 1
            d = s["d"] = self._direction(flat_grad, s)
            if s.get("prev_flat_grad") is None:
                s["prev_flat_grad"] = _clone(flat_grad)
            else:
                s["prev_flat_grad"].copy_(flat_grad)
            prev_loss = s["prev_loss"] = loss
            t = min(1.0, 1.0 / flat_grad.abs().sum()) * self.lr if s["n_iter"] == 1 else self.lr
            gtd = flat_grad.dot(d)
            if gtd > -self.tolerance_change:  # directional derivative below tolerance
                s["t"] = t
                break
            evals, opt_cond = 0, False
            if self.line_search_fn is not None:
                x = [_clone(p) for p in self.params]
                loss, flat_grad, t, evals = strong_wolfe(partial(self._evaluate_at, closure, x, d=d), t, d, loss,
                                                         flat_grad, gtd, max_ls=self.max_eval - current_evals)  # fmt: skip
                self._add(t, d)
                opt_cond = bool(flat_grad.abs().max() <= self.tolerance_grad)
            else:
                self._add(t, d)
                if n_iter != self.max_iter:  # no evaluation after the last iteration
                    with torch.enable_grad():
                        loss = float(closure().detach())
                    flat_grad = self._flat_grad()
                    opt_cond = bool(flat_grad.abs().max() <= self.tolerance_grad)
                    evals = 1
            s["t"] = t
            current_evals += evals
            s["func_evals"] += evals
            if n_iter == self.max_iter or current_evals >= self.max_eval or opt_cond:
                break
            if d.mul(t).abs().max() <= self.tolerance_change or abs(loss - prev_loss) < self.tolerance_change:
                break  # lack of progress
        return orig_loss
