"""Benchmark the KAN layer: physkan vs a dense matmul network of the same shapes (vs pykan).

One training step = forward + backward + Adam step on a [64, 64, 64] network, G=10, k=3,
batch 1024, on the CPU. The *dense equivalent* has, per layer, one matmul of the same
shape as our fused contraction, ``(N, in*(G+k+1)) @ (in*(G+k+1), out)``, applied to the
layer input repeated ``G+k+1`` times (so it chains and has the same FLOPs, but no basis).
pykan (``pip install pykan``) is timed too when importable; it is never a dependency.

Also reports the peak resident-memory growth (VmHWM after a reset, Linux) of fitting a
[2,5,1] KAN on 10k points for a few LBFGS steps.

Variants: physkan's layer on the *local* B-spline path (only the ``k + 1`` active functions,
:mod:`physkan.kan.local_spline`; with the compiled kernels of :mod:`physkan.kan.native` where
they build), the same path on its pure-PyTorch route (``physkan_local_torch``: what a machine
without a C compiler runs), on the *dense* basis path, on ``auto`` (what the layer picks),
the dense matmul, and ``torch.compile`` of the network (``--compile``), each at every
``--threads`` count, interleaved ``--rounds`` times (median of the medians, and the ratio of
10th percentiles, steadier on a loaded machine).

Usage: ``python scripts/bench_layer.py [--json docs/bench_layer.json] [--repeats 20]
[--threads 1 2] [--clock cpu] [--compile] [--device cuda]``. Compare ratios, not absolute times.
``--device cuda`` runs every variant (pykan too) on the GPU, timed on the wall clock with a
``torch.cuda.synchronize`` after each step.

Clocks. Every step is timed on both clocks; ``--clock`` picks the one behind ``*_ms`` and
``ratio_*`` (the other is in ``*_wall_ms`` / ``*_cpu_ms``). ``cpu`` (default) is this
process's CPU time: robust to other jobs at 1 thread. At 2 threads it sums both threads'
time, including the OpenMP spin-wait of the second thread at every kernel's barrier, which
inflates code of many small kernels: there the right figure is ``--clock wall`` *on an idle
machine* (with another job on a 2-core box a 2-thread run is preempted at those barriers and
wall times are meaningless: the script records the load average before and after).

Fairness. Both networks run the same optimizer (Adam, lr 1e-3, torch defaults), dtype
(float32), thread count, warm-up (3 steps) and loss; the dense equivalent does a forward
matmul and the backward matmuls (weights; input where it needs a gradient) of the same
shape, plus the copy that builds its input (the repeated layer input; the spline path builds
its basis). Neither uses a custom allocator, but glibc's default one, depending on what the
process allocated before, may give the dense baseline fresh pages for its large temporaries
every step (``*_minflt_per_step``: minor page faults, up to ~2000 per step, about a third of
its time), while physkan reuses its own buffers: set
``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456``
for a run in which neither pays page faults (recorded under ``config.glibc_tunables``), or
pass ``--no-page-faults``, which reruns the script with exactly that setting.
pykan is timed with its default settings and in its fastest mode (symbolic branch off,
activations not saved).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

from physkan import MultKAN
from physkan.kan import native

CLOCK = time.process_time
#: glibc malloc settings under which large temporaries are reused, never fresh pages
#: (``--no-page-faults``): mmap threshold 32 MiB, trim threshold 256 MiB
NO_FAULT_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456"
#: where the networks and data live (``--device``); CUDA steps are timed with a synchronize
DEVICE = torch.device("cpu")


def _sync() -> None:
    """Wait for queued kernels (CUDA) so a wall-clock interval covers the step's work."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def step_times_ms(step: Callable[[], None], repeats: int, warmup: int = 3) -> list[float]:
    """``repeats`` times of ``step`` in milliseconds on the primary clock (``CLOCK``)."""
    return timed_steps(step, repeats, warmup)[0]


def timed_steps(step: Callable[[], None], repeats: int, warmup: int = 3) -> tuple[list[float], list[float], float]:
    """``repeats`` runs of ``step``: times in ms on the primary clock (``CLOCK``: CPU time of
    this process by default, robust to other jobs; ``--clock wall`` for wall time) and on the
    other one, and the minor page faults per step."""
    for _ in range(warmup):
        step()
    other = time.perf_counter if CLOCK is time.process_time else time.process_time
    times, others = [], []
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    _sync()
    for _ in range(repeats):
        t0, o0 = CLOCK(), other()
        step()
        _sync()
        times.append((CLOCK() - t0) * 1e3)
        others.append((other() - o0) * 1e3)
    return times, others, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / repeats


def median_step_ms(step: Callable[[], None], repeats: int, warmup: int = 3) -> float:
    """Median of :func:`step_times_ms`."""
    return statistics.median(step_times_ms(step, repeats, warmup))


def low_percentile(times: list[float], q: float = 0.1) -> float:
    """The ``q`` quantile of ``times`` (nearest rank): on a loaded machine the low end is the
    run least disturbed by other jobs, so ratios of low percentiles are the steadiest."""
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


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
    model = PyKAN(width=widths, grid=grid, k=k, seed=0, auto_save=False, symbolic_enabled=not fastest,
                  device=str(DEVICE))
    if fastest:
        model.save_act = False
    return median_step_ms(make_step(model, x, y), max(3, repeats // 4), warmup=1)


_MEMORY_PROBE = """
import resource, torch
from physkan import MultKAN


def status_kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


torch.set_num_threads(1)
gen = torch.Generator().manual_seed(0)
x = torch.rand(10_000, 2, generator=gen) * 2 - 1
y = torch.exp(torch.sin(torch.pi * x[:, :1]) + x[:, 1:] ** 2)
model = MultKAN([2, 5, 1], seed=0)
opt = torch.optim.LBFGS(model.parameters(), lr=1.0, history_size=10, line_search_fn="strong_wolfe")
try:  # Linux: reset the high-water mark so the peak is the fit's, not the imports'
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    before, peak = status_kib("VmRSS"), lambda: status_kib("VmHWM")
except OSError:  # elsewhere: ru_maxrss, which may still hold the import peak (then 0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def closure():
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    return loss


for _ in range(5):
    opt.step(closure)
print((peak() - before) / 1024.0)
"""


def peak_memory_fit() -> float:
    """Peak RSS growth (MiB) of a fresh process fitting a [2,5,1] KAN on 10k points (LBFGS)."""
    out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE], capture_output=True, text=True,
                         check=True)  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def _model(widths: list[int], grid: int, k: int, path: str) -> MultKAN:
    model = MultKAN(widths, grid=grid, k=k, seed=0).to(DEVICE)
    for layer in model.layers:
        layer.spline_path = path
    return model


def _without_native(step: Callable[[], None]) -> Callable[[], None]:
    """``step`` on the pure-PyTorch local route (compiled kernels off: :mod:`physkan.kan.native`)."""

    def run() -> None:
        with native.disabled():
            step()

    return run


def bench_threads(args: argparse.Namespace, threads: int) -> dict:
    """All variants at ``threads`` torch threads, interleaved ``--rounds`` times.

    Reports the median of the per-round medians (``*_ms``, ``ratio_*``) and the 10th
    percentile of every step (``*_p10_ms``, ``ratio_p10_*``: steadier under load).
    """
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    widths = args.width
    x = (torch.rand(args.batch, widths[0]) * 2 - 1).to(DEVICE)
    y = torch.randn(args.batch, widths[-1]).to(DEVICE)
    steps = {
        "physkan_local": make_step(_model(widths, args.grid, args.k, "local"), x, y),
        "physkan_local_torch": _without_native(make_step(_model(widths, args.grid, args.k, "local"), x, y)),
        "physkan_dense": make_step(_model(widths, args.grid, args.k, "dense"), x, y),
        "physkan": make_step(_model(widths, args.grid, args.k, "auto"), x, y),
        "dense": make_step(DenseEquivalent(widths, args.grid + args.k + 1).to(DEVICE), x, y),
    }
    if args.compile:  # torch.compile of the whole network, each spline path (slow to build)
        for path in ("local", "dense"):
            t0 = time.perf_counter()
            step = make_step(torch.compile(_model(widths, args.grid, args.k, path)), x, y)
            step()
            steps[f"compiled_{path}"] = step
            print(f"torch.compile ({path}) built in {time.perf_counter() - t0:.0f} s")
    times: dict[str, list[float]] = {name: [] for name in steps}
    other: dict[str, list[float]] = {name: [] for name in steps}
    every: dict[str, list[float]] = {name: [] for name in steps}
    faults: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):  # interleave to share the machine's noise fairly
        for name, step in steps.items():
            run, run_other, run_faults = timed_steps(step, args.repeats)
            times[name].append(statistics.median(run))
            other[name].append(statistics.median(run_other))
            every[name].extend(run)
            faults[name].append(run_faults)
    second = "cpu" if args.clock == "wall" else "wall"
    out: dict = {f"{name}_ms": statistics.median(v) for name, v in times.items()}
    out.update({f"{name}_p10_ms": low_percentile(v) for name, v in every.items()})
    out.update({f"{name}_{second}_ms": statistics.median(v) for name, v in other.items()})
    out.update({f"{name}_minflt_per_step": statistics.median(v) for name, v in faults.items()})
    for name in steps:
        if name != "dense":
            out[f"ratio_{name}_to_dense"] = out[f"{name}_ms"] / out["dense_ms"]
            out[f"ratio_p10_{name}_to_dense"] = out[f"{name}_p10_ms"] / out["dense_p10_ms"]
            out[f"ratio_{second}_{name}_to_dense"] = out[f"{name}_{second}_ms"] / out[f"dense_{second}_ms"]
    out["ratio_to_dense"] = out["ratio_physkan_to_dense"]
    out["auto_path"] = "local" if _model(widths, args.grid, args.k, "auto").layers[0].uses_local_path(args.batch) else "dense"
    return out


#: (batch, in, out, G) shapes of one layer for ``--crossover`` (discovery-sized to wide).
CROSSOVER_SHAPES = [(1000, 2, 5, 5), (1000, 2, 5, 20), (1000, 5, 1, 20), (4096, 2, 5, 10),
                    (1024, 8, 8, 10), (1024, 16, 16, 5), (256, 64, 64, 10), (1024, 64, 64, 3),
                    (1024, 64, 64, 10), (1024, 64, 64, 20)]  # fmt: skip


def crossover(k: int, repeats: int) -> list[dict]:
    """One layer, forward + backward (input gradient included): local vs dense path per shape."""
    from physkan.kan.layer import KANLayer

    rows = []
    for n, i, o, g in CROSSOVER_SHAPES:
        layer = KANLayer(i, o, grid_size=g, k=k)
        x = (torch.rand(n, i) * 2 - 1).requires_grad_()
        ms = {}
        for path in ("dense", "local"):
            layer.spline_path = path
            ms[path] = median_step_ms(lambda: layer(x).square().sum().backward(), repeats)  # noqa: B023
        layer.spline_path = "auto"
        rows.append({"batch": n, "in": i, "out": o, "grid": g, "dense_ms": ms["dense"],
                     "local_ms": ms["local"], "local_over_dense": ms["local"] / ms["dense"],
                     "auto": "local" if layer.uses_local_path(n) else "dense"})  # fmt: skip
        print(f"{n:5d} x {i:2d} -> {o:2d}, G={g:2d}: dense {ms['dense']:6.2f} ms, local "
              f"{ms['local']:6.2f} ms, local/dense {ms['local'] / ms['dense']:.2f}, auto: {rows[-1]['auto']}")  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=str, default=None, help="write results to this file")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds of --repeats steps per variant (default 3)")  # fmt: skip
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--grid", type=int, default=10)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--width", type=int, nargs="+", default=[64, 64, 64])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="torch thread counts to run (default 1 2)")  # fmt: skip
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                        help="process CPU time (default) or wall time; --device cuda uses wall time")
    parser.add_argument("--device", default="cpu",
                        help="cpu (default) or cuda[:N]: where the networks and data live")
    parser.add_argument("--compile", action="store_true",
                        help="also time torch.compile of the network (~1 min to build per path)")  # fmt: skip
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory probe")
    parser.add_argument("--crossover", action="store_true",
                        help="also time one layer, local vs dense path, over a range of shapes")  # fmt: skip
    parser.add_argument("--no-page-faults", action="store_true",
                        help="rerun this process with glibc's mmap and trim thresholds raised, so that "
                             "neither side pays page faults for its temporaries (the fair comparison)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.no_page_faults and os.environ.get("GLIBC_TUNABLES") != NO_FAULT_TUNABLES:
        if argv is not None:  # called as a function: the allocator is set at process start
            parser.error("--no-page-faults: run the script itself (the allocator is set at process start)")
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "GLIBC_TUNABLES": NO_FAULT_TUNABLES})
    global CLOCK, DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible to torch")
    if DEVICE.type == "cuda":  # GPU work is not this process's CPU time
        args.clock, args.no_memory, args.crossover = "wall", True, False
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if any(t < 1 for t in args.threads) or min(args.repeats, args.rounds, args.batch) < 1:
        parser.error("--threads, --repeats, --rounds and --batch must be positive")

    widths = args.width
    result: dict = {
        "config": {
            "width": widths,
            "grid": args.grid,
            "k": args.k,
            "batch": args.batch,
            "threads": args.threads,
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "processor": cpu_name(),
            "cores": os.cpu_count(),
            "load_average_before": os.getloadavg()[0],
            "clock": args.clock,
            "device": str(DEVICE),
            "device_name": torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else cpu_name(),
            "glibc_tunables": os.environ.get("GLIBC_TUNABLES"),
            "command": "python scripts/bench_layer.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        },
        "by_threads": {},
    }
    second = "cpu" if args.clock == "wall" else "wall"
    for threads in args.threads:
        run = bench_threads(args, threads)
        result["by_threads"][str(threads)] = run
        print(f"--- {threads} thread(s)")
        for name in ("physkan", "physkan_local", "physkan_local_torch", "physkan_dense", "compiled_local", "compiled_dense"):
            if f"{name}_ms" in run:
                print(f"{name:19s} {run[f'{name}_ms']:8.2f} ms/step   ratio to dense = {run[f'ratio_{name}_to_dense']:.2f}"
                      f"   (10th percentiles: {run[f'ratio_p10_{name}_to_dense']:.2f}; {second} clock: "
                      f"{run[f'ratio_{second}_{name}_to_dense']:.2f})")  # fmt: skip
        print(f"{'dense matmul':19s} {run['dense_ms']:8.2f} ms/step   (auto path: {run['auto_path']}; page faults "
              f"per step: dense {run['dense_minflt_per_step']:.0f}, physkan {run['physkan_minflt_per_step']:.0f})")
    if args.crossover:
        torch.set_num_threads(args.threads[0])
        print(f"--- crossover, one layer fwd + bwd, {args.threads[0]} thread(s)")
        result["crossover"] = crossover(args.k, args.repeats)
    first = result["by_threads"][str(args.threads[0])]
    # the keys of the single-thread-count report, for the first thread count
    result.update({key: first[key] for key in ("physkan_ms", "dense_ms", "ratio_to_dense")})
    result["config"]["load_average_after"] = os.getloadavg()[0]
    torch.set_num_threads(args.threads[0])
    torch.manual_seed(0)
    x = (torch.rand(args.batch, widths[0]) * 2 - 1).to(DEVICE)
    y = torch.randn(args.batch, widths[-1]).to(DEVICE)
    pykan_ms = bench_pykan(widths, args.grid, args.k, x, y, args.repeats, fastest=False)
    pykan_fast_ms = bench_pykan(widths, args.grid, args.k, x, y, args.repeats, fastest=True)
    result["pykan_ms"] = pykan_ms
    result["speedup_vs_pykan"] = None if pykan_ms is None else pykan_ms / result["physkan_ms"]
    result["pykan_fastest_ms"] = pykan_fast_ms
    result["speedup_vs_pykan_fastest"] = (
        None if pykan_fast_ms is None else pykan_fast_ms / result["physkan_ms"]
    )
    result["peak_memory_fit_2_5_1_10k_mib"] = None if args.no_memory else peak_memory_fit()
    if DEVICE.type == "cuda":
        result["cuda_peak_memory_mib"] = torch.cuda.max_memory_allocated(DEVICE) / 2**20

    if pykan_ms is None:
        print("pykan         not installed (pip install pykan to compare)")
    else:
        print(f"pykan         {pykan_ms:8.2f} ms/step   speed-up = {result['speedup_vs_pykan']:.1f}x (default settings)")
        print(f"pykan fastest {pykan_fast_ms:8.2f} ms/step   speed-up = {result['speedup_vs_pykan_fastest']:.1f}x "
              "(symbolic_enabled=False, save_act=False)")
    if result["peak_memory_fit_2_5_1_10k_mib"] is not None:
        print(f"peak memory of a [2,5,1] LBFGS fit on 10k points: {result['peak_memory_fit_2_5_1_10k_mib']:.1f} MiB")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
