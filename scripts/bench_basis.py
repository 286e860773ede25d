"""Small KANs on adaptive (non-uniform) grids: the compiled dense-basis kernel vs the PyTorch route.

``update_grid`` with ``grid_eps < 1`` (pykan's default is 0.02) leaves knots that are not
equally spaced; small layers then take the dense basis path, whose B-spline basis comes
either from the compiled kernel of :mod:`physkan.kan.native` (one pass, the same bits) or
from the de Boor triangle in PyTorch ops (~40 small kernels). Both are timed in the same
process, interleaved, on a training step (forward + backward + Adam, float64) and on a
no-grad forward, and printed as ratios (PyTorch route / compiled; > 1: the kernel wins).

Usage: ``python scripts/bench_basis.py [--json docs/bench_basis.json] [--repeats 200]
[--rounds 3] [--threads 1]``. Compare ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from physkan.kan import KAN, native

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_layer import cpu_name  # noqa: E402  (scripts/ is not a package)

#: (width, grid size, points): the sizes discovery and the tutorials train
CASES = [([2, 1], 5, 1000), ([2, 5, 1], 5, 1000), ([4, 4, 1], 10, 2000), ([3, 8, 1], 10, 5000)]


def _ms_per_call(fn: Callable[[], None], repeats: int) -> float:
    for _ in range(5):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e3


def _workloads(width: list[int], grid: int, n: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """(training step, no-grad forward) of a KAN with an adaptive grid on ``n`` points."""
    gen = torch.Generator().manual_seed(0)
    model = KAN(width, grid=grid, grid_eps=0.02, seed=0).double()
    x = torch.randn(n, width[0], generator=gen, dtype=torch.float64)
    y = torch.randn(n, width[-1], generator=gen, dtype=torch.float64)
    model.update_grid(x)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()

    def forward() -> None:
        with torch.no_grad():
            model(x)

    return step, forward


def measure(width: list[int], grid: int, n: int, repeats: int, rounds: int) -> dict[str, object]:
    step, forward = _workloads(width, grid, n)
    times: dict[str, list[float]] = {k: [] for k in ("step_native", "step_torch", "fwd_native", "fwd_torch")}
    for _ in range(rounds):  # interleaved: both routes see the same machine state
        times["step_native"].append(_ms_per_call(step, repeats))
        times["fwd_native"].append(_ms_per_call(forward, repeats))
        with native.disabled():
            times["step_torch"].append(_ms_per_call(step, repeats))
            times["fwd_torch"].append(_ms_per_call(forward, repeats))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "width": width, "grid": grid, "points": n,
        **{f"{k}_ms": round(v, 4) for k, v in med.items()},
        "ratio_step": round(med["step_torch"] / med["step_native"], 3),
        "ratio_forward": round(med["fwd_torch"] / med["fwd_native"], 3),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=None, help="write results to this file")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not native.available(torch.zeros(1, dtype=torch.float64), k=3):
        print("the compiled kernels are not available here (no C compiler?): nothing to compare")
        return 1
    load_before = os.getloadavg()[0]
    rows = []
    for width, grid, n in CASES:
        row = measure(width, grid, n, args.repeats, args.rounds)
        rows.append(row)
        print(f"{str(width):12s} G={grid:<3d} N={n:<5d} step: compiled {row['step_native_ms']:.3f} ms, "
              f"PyTorch route {row['step_torch_ms']:.3f} ms (x{row['ratio_step']:.2f}); no-grad forward: "
              f"{row['fwd_native_ms']:.3f} vs {row['fwd_torch_ms']:.3f} ms (x{row['ratio_forward']:.2f})")  # fmt: skip
    result = {
        "config": {
            "threads": args.threads, "repeats": args.repeats, "rounds": args.rounds, "dtype": "float64",
            "grid_eps": 0.02, "cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "load_average_before": load_before,
            "load_average_after": os.getloadavg()[0],
            "command": "python scripts/bench_basis.py " + " ".join(sys.argv[1:]),
        },
        "cases": rows,
    }  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
