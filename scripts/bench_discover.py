"""Wall time of ``physkan discover`` on the built-in problems: median of N runs each.

Each run is a fresh process, ``physkan discover --problem NAME --json --no-register`` (so the
figure includes interpreter start and imports, what a user waits for). The JSON answer of
every run is kept: its ``seconds`` (the pipeline's own clock), ``recovered`` and formula.

Usage: ``python scripts/bench_discover.py [--problems tutorial pendulum] [--repeats 3]
[--threads 1] [--json docs/bench_discover.json] [--timeout 120]``.
Wall times depend on what else runs on the machine: the load average is recorded before
and after; compare on an idle machine, or as ratios of runs made back to back (e.g. with
``PHYSKAN_TRAIN_ENGINE=lightning`` for the Lightning engine on every fit).
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
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_layer import cpu_name  # noqa: E402  (scripts/ is not a package)


def physkan_command() -> list[str]:
    """The ``physkan`` console script next to this interpreter, else ``python -m physkan``."""
    script = Path(sys.executable).with_name("physkan")
    return [str(script)] if script.exists() else [sys.executable, "-m", "physkan"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(problem: str, threads: int, timeout: float, engine: str | None = None) -> dict[str, Any]:
    """One ``physkan discover`` process: wall seconds plus the fields of its JSON answer.

    Raises:
        RuntimeError: if the command fails or does not answer within ``timeout`` seconds.
    """
    cmd = [*physkan_command(), "discover", "--problem", problem, "--json", "--no-register"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if engine is not None:  # "auto" or "lightning" (PHYSKAN_TRAIN_ENGINE, physkan/train/plain.py)
        env["PHYSKAN_TRAIN_ENGINE"] = engine
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), _children_cpu()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                              cwd=REPO)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{problem}: no answer within {timeout:.0f} s") from exc
    wall, cpu = time.perf_counter() - t0, _children_cpu() - c0
    if done.returncode != 0:
        raise RuntimeError(f"{problem}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "wall_s": wall,
        "cpu_s": cpu,  # user + system CPU of the process: far less sensitive to machine load
        "load_average": load,  # 1-minute load average when the run started
        "seconds": answer.get("seconds"),
        "recovered": answer.get("recovered"),
        "formula": answer.get("formula"),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=["tutorial", "pendulum"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the runs")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per run")
    parser.add_argument("--json", type=str, default=None, help="write results to this file")
    parser.add_argument("--compare-lightning", action="store_true",
                        help="also run every repeat with PHYSKAN_TRAIN_ENGINE=lightning, interleaved "
                             "(same load for both), under problems.<name>.lightning")  # fmt: skip
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.threads < 1 or args.timeout <= 0:
        parser.error("--repeats, --threads and --timeout must be positive")

    result: dict[str, Any] = {
        "config": {
            "repeats": args.repeats,
            "threads": args.threads,
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "processor": cpu_name(),
            "cores": os.cpu_count(),
            "load_average_before": os.getloadavg()[0],
            # PHYSKAN_TRAIN_ENGINE=lightning forces Lightning for every fit (the engine before
            # the plain LBFGS loop, physkan/train/plain.py): the same-machine comparison
            "train_engine": os.environ.get("PHYSKAN_TRAIN_ENGINE", "auto"),
            "command": "python scripts/bench_discover.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
        },
        "problems": {},
    }
    for problem in args.problems:
        runs, lightning = [], []
        for _ in range(args.repeats):
            runs.append(run_once(problem, args.threads, args.timeout, "auto" if args.compare_lightning else None))
            if args.compare_lightning:
                lightning.append(run_once(problem, args.threads, args.timeout, "lightning"))
        walls = [r["wall_s"] for r in runs]
        outside = [r["wall_s"] - r["seconds"] for r in runs if r["seconds"] is not None]
        result["problems"][problem] = {
            "median_wall_s": statistics.median(walls),
            # interpreter start, imports and exit: the wall time the pipeline's clock misses
            "median_outside_pipeline_s": statistics.median(outside) if outside else None,
            "runs": runs,
            "all_recovered": all(bool(r["recovered"]) for r in runs),
        }
        if lightning:
            light = statistics.median(r["wall_s"] for r in lightning)
            result["problems"][problem]["lightning"] = {
                "median_wall_s": light, "runs": lightning,
                "wall_ratio_auto_to_lightning": statistics.median(walls) / light,
                "cpu_ratio_auto_to_lightning": statistics.median(r["cpu_s"] for r in runs)
                / statistics.median(r["cpu_s"] for r in lightning),
                "same_formulas": [r["formula"] for r in runs] == [r["formula"] for r in lightning],
            }  # fmt: skip
        result["problems"][problem]["median_cpu_s"] = statistics.median(r["cpu_s"] for r in runs)
        print(f"{problem:10s} median {statistics.median(walls):6.2f} s wall "
              f"(runs: {', '.join(f'{w:.2f}' for w in walls)}; outside the pipeline "
              f"{statistics.median(outside) if outside else float('nan'):.2f} s, CPU "
              f"{result['problems'][problem]['median_cpu_s']:.2f} s, load "
              f"{max(r['load_average'] for r in runs):.1f}), "
              f"recovered: {result['problems'][problem]['all_recovered']}")  # fmt: skip
        if lightning:
            row = result["problems"][problem]["lightning"]
            print(f"{'':10s} Lightning engine {row['median_wall_s']:6.2f} s wall, "
                  f"ratio {row['wall_ratio_auto_to_lightning']:.2f}, same formulas: {row['same_formulas']}")  # fmt: skip
    result["config"]["load_average_after"] = os.getloadavg()[0]
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(2)
