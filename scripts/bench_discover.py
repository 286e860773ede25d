"""Wall time of ``physkan discover`` on the built-in problems: median of N runs each.

Each run is a fresh process, ``physkan discover --problem NAME --json --no-register`` (so the
figure includes interpreter start and imports, what a user waits for). The JSON answer of
every run is kept: its ``seconds`` (the pipeline's own clock), ``recovered`` and formula.

Usage: ``python scripts/bench_discover.py [--problems tutorial pendulum] [--repeats 3]
[--threads 1] [--json docs/bench_discover.json] [--timeout 120]``.
Wall times depend on what else runs on the machine: the load average is recorded before
and after; compare on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def run_once(problem: str, threads: int, timeout: float) -> dict[str, Any]:
    """One ``physkan discover`` process: wall seconds plus the fields of its JSON answer.

    Raises:
        RuntimeError: if the command fails or does not answer within ``timeout`` seconds.
    """
    cmd = [*physkan_command(), "discover", "--problem", problem, "--json", "--no-register"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                              cwd=REPO)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{problem}: no answer within {timeout:.0f} s") from exc
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{problem}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "wall_s": wall,
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
            "command": "python scripts/bench_discover.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
        },
        "problems": {},
    }
    for problem in args.problems:
        runs = [run_once(problem, args.threads, args.timeout) for _ in range(args.repeats)]
        walls = [r["wall_s"] for r in runs]
        result["problems"][problem] = {
            "median_wall_s": statistics.median(walls),
            "runs": runs,
            "all_recovered": all(bool(r["recovered"]) for r in runs),
        }
        print(f"{problem:10s} median {statistics.median(walls):6.2f} s wall "
              f"(runs: {', '.join(f'{w:.2f}' for w in walls)}), "
              f"recovered: {result['problems'][problem]['all_recovered']}")  # fmt: skip
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
