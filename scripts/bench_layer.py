"""Benchmark the KAN layer: physkan vs a dense matmul network of the same shapes (vs pykan).

One training step = forward + backward + Adam step on a [64, 64, 64] network, G=10, k=3,
batch 1024, on the CPU. The *dense equivalent* has, per layer, one matmul of the same
shape as our fused contraction, ``(N, in*(G+k+1)) @ (in*(G+k+1), out)``, applied to the
layer input repeated ``G+k+1`` times (so it chains and has the same FLOPs, but no basis).
pykan (``pip install pykan``) is timed too when importable; it is never a dependency.

Also reports the peak resident-memory growth (ru_maxrss) of fitting a
[2,5,1] KAN on 10k points for a few LBFGS steps.

Usage: ``python scripts/bench_layer.py [--json OUT] [--repeats 20] [--threads 1] [--clock cpu]``.
Times are per-process CPU time on one thread by default (robust on a shared machine);
compare ratios, not absolute times. pykan is timed with its default settings and in its
fastest mode (symbolic branch off, activations not saved).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

from physkan import MultKAN

CLOCK = time.process_time


def median_step_ms(step: Callable[[], None], repeats: int, warmup: int = 3) -> float:
    """Median time of ``step`` in milliseconds (CPU time of this process by default:
    robust to other jobs on a shared machine; ``--clock wall`` for wall time)."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t0 = CLOCK()
        step()
        times.append((CLOCK() - t0) * 1e3)
    return statistics.median(times)


class DenseEquivalent(nn.Module):
    """Plain matmuls with the shapes of a KAN's fused contraction, per layer."""

    def __init__(self, widths: list[int], n_features: int) -> None:
        super().__init__()
        self.n_features = n_features
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(i * n_features, o) / (i * n_features) ** 0.5)
            for i, o in zip(widths[:-1], widths[1:])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for w in self.weights:
            feats = x.unsqueeze(-1).expand(*x.shape, self.n_features).reshape(x.shape[0], -1)
            x = feats @ w
        return x


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()

    return step


def bench_pykan(
    widths: list[int], grid: int, k: int, x, y, repeats: int, fastest: bool
) -> float | None:
    """pykan's ms/step: default settings, or ``fastest`` (symbolic branch off, no saved acts)."""
    try:
        from kan import KAN as PyKAN  # type: ignore[import-not-found]
    except Exception:
        return None
    model = PyKAN(width=widths, grid=grid, k=k, seed=0, auto_save=False, symbolic_enabled=not fastest)
    if fastest:
        model.save_act = False
    return median_step_ms(make_step(model, x, y), max(3, repeats // 4), warmup=1)


_MEMORY_PROBE = """
import resource, torch
from physkan import MultKAN
torch.set_num_threads(1)
gen = torch.Generator().manual_seed(0)
x = torch.rand(10_000, 2, generator=gen) * 2 - 1
y = torch.exp(torch.sin(torch.pi * x[:, :1]) + x[:, 1:] ** 2)
model = MultKAN([2, 5, 1], seed=0)
opt = torch.optim.LBFGS(model.parameters(), lr=1.0, history_size=10, line_search_fn="strong_wolfe")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

def closure():
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    return loss

for _ in range(5):
    opt.step(closure)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024.0)
"""


def peak_memory_fit() -> float:
    """Peak RSS growth (MiB) of a fresh process fitting a [2,5,1] KAN on 10k points (LBFGS)."""
    out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE], capture_output=True, text=True,
                         check=True)  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=str, default=None, help="write results to this file")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--grid", type=int, default=10)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--width", type=int, nargs="+", default=[64, 64, 64])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    widths = args.width
    x = torch.rand(args.batch, widths[0]) * 2 - 1
    y = torch.randn(args.batch, widths[-1])
    ours = MultKAN(widths, grid=args.grid, k=args.k, seed=0)
    dense = DenseEquivalent(widths, args.grid + args.k + 1)

    # interleave to share the machine's noise fairly
    ours_ms, dense_ms = [], []
    step_ours, step_dense = make_step(ours, x, y), make_step(dense, x, y)
    for _ in range(3):
        ours_ms.append(median_step_ms(step_ours, args.repeats))
        dense_ms.append(median_step_ms(step_dense, args.repeats))
    result = {
        "config": {
            "width": widths,
            "grid": args.grid,
            "k": args.k,
            "batch": args.batch,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "clock": args.clock,
        },
        "physkan_ms": statistics.median(ours_ms),
        "dense_ms": statistics.median(dense_ms),
    }
    result["ratio_to_dense"] = result["physkan_ms"] / result["dense_ms"]
    pykan_ms = bench_pykan(widths, args.grid, args.k, x, y, args.repeats, fastest=False)
    pykan_fast_ms = bench_pykan(widths, args.grid, args.k, x, y, args.repeats, fastest=True)
    result["pykan_ms"] = pykan_ms
    result["speedup_vs_pykan"] = None if pykan_ms is None else pykan_ms / result["physkan_ms"]
    result["pykan_fastest_ms"] = pykan_fast_ms
    result["speedup_vs_pykan_fastest"] = (
        None if pykan_fast_ms is None else pykan_fast_ms / result["physkan_ms"]
    )
    result["peak_memory_fit_2_5_1_10k_mib"] = peak_memory_fit()

    print(f"physkan       {result['physkan_ms']:8.2f} ms/step")
    print(f"dense equiv.  {result['dense_ms']:8.2f} ms/step   ratio physkan/dense = {result['ratio_to_dense']:.2f}")
    if pykan_ms is None:
        print("pykan         not installed (pip install pykan to compare)")
    else:
        print(f"pykan         {pykan_ms:8.2f} ms/step   speed-up = {result['speedup_vs_pykan']:.1f}x (default settings)")
        print(f"pykan fastest {pykan_fast_ms:8.2f} ms/step   speed-up = {result['speedup_vs_pykan_fastest']:.1f}x "
              "(symbolic_enabled=False, save_act=False)")
    print(f"peak memory of a [2,5,1] LBFGS fit on 10k points: {result['peak_memory_fit_2_5_1_10k_mib']:.1f} MiB")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
