"""physkan.train.lbfgs.LBFGS takes exactly the steps of torch.optim.LBFGS (float64, CPU)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from physkan.train.lbfgs import LBFGS


def _rosenbrock(p: list[torch.Tensor]) -> torch.Tensor:
    x = p[0]
    return ((1 - x[:-1]) ** 2).sum() + 100 * ((x[1:] - x[:-1] ** 2) ** 2).sum()


def _regression(p: list[torch.Tensor]) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    a = torch.randn(40, 5, generator=g, dtype=torch.float64)
    y = torch.sin(a[:, :1] * 2) + a[:, 1:2] * a[:, 2:3]
    h = torch.tanh(a @ p[0] + p[1])
    return ((h @ p[2] - y) ** 2).mean()


def _start(problem: str) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    if problem == "rosenbrock":
        return [torch.tensor([-1.2, 1.0, -0.5, 0.8], dtype=torch.float64)]
    return [torch.randn(5, 8, generator=g, dtype=torch.float64) * 0.5,
            torch.zeros(8, dtype=torch.float64), torch.randn(8, 1, generator=g, dtype=torch.float64) * 0.1]  # fmt: skip


def _run(cls: type, problem: str, line_search: str | None, steps: int, clear_at: int | None,
         **options: float) -> tuple[list[torch.Tensor], list[float]]:  # fmt: skip
    params = [torch.nn.Parameter(t.clone()) for t in _start(problem)]
    loss_fn = _rosenbrock if problem == "rosenbrock" else _regression
    opt = cls(params, line_search_fn=line_search, **options)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn(params)
        loss.backward()
        return loss

    losses = []
    for step in range(steps):
        if step == clear_at:
            opt.state.clear()
        losses.append(float(opt.step(closure).detach()))
    return [p.detach() for p in params], losses


@pytest.mark.parametrize("problem", ["rosenbrock", "regression"])
@pytest.mark.parametrize("line_search", ["strong_wolfe", None])
@pytest.mark.parametrize("options", [dict(lr=1.0, max_iter=20, history_size=10, tolerance_grad=1e-32,
                                          tolerance_change=1e-32),
                                     dict(lr=0.5, max_iter=7, history_size=3),
                                     dict(lr=1.0, max_iter=40, max_eval=5, history_size=5)])  # fmt: skip
def test_iterates_equal_torch(problem: str, line_search: str | None, options: dict) -> None:
    if line_search is None and options["lr"] == 1.0 and problem == "rosenbrock":
        options = {**options, "lr": 1e-3}  # a fixed unit step diverges on Rosenbrock
    ours, our_losses = _run(LBFGS, problem, line_search, 6, 3, **options)
    ref, ref_losses = _run(torch.optim.LBFGS, problem, line_search, 6, 3, **options)
    assert our_losses == ref_losses
    for a, b in zip(ours, ref):
        assert torch.equal(a, b), (a - b).abs().max()
    assert our_losses[-1] < our_losses[0]  # it optimised something


def test_converged_start_returns_at_once() -> None:
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = LBFGS([p], tolerance_grad=1e-7)
    calls = []

    def closure() -> torch.Tensor:
        calls.append(1)
        opt.zero_grad()
        loss = ((p - 1) ** 2).sum()
        loss.backward()
        return loss

    assert float(opt.step(closure).detach()) == 0.0 and len(calls) == 1


def test_bad_arguments() -> None:
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="line_search_fn"):
        LBFGS([p], line_search_fn="armijo")
    with pytest.raises(ValueError, match="learning rate"):
        LBFGS([p], lr=-1)
    with pytest.raises(ValueError, match="empty"):
        LBFGS([])


def test_plain_fit_imports_neither_dynamo_nor_the_integrators() -> None:
    """The point of the class: a discovery-sized fit through ``physkan.train.fit`` (the
    plain loop) imports no ``torch._dynamo`` (~2 s), and importing the discovery pipeline
    imports no torchdiffeq/scipy.integrate (~0.6 s, only rollouts need them)."""
    code = ("import sys, torch\nimport physkan.discover\nfrom physkan.kan import MultKAN\n"
            "from physkan.train import fit\nfrom physkan.train.objectives import RegressionObjective\n"
            "x = torch.rand(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))\n"
            "r = fit(MultKAN([2, 1]), RegressionObjective(), {'x': x, 'y': x.sum(1, keepdim=True)}, steps=2)\n"
            "assert r.final_loss < 1e-3, r.final_loss\n"
            "print(sorted(m for m in ('torch._dynamo', 'torchdiffeq', 'scipy.integrate') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
