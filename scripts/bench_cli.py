"""Start-up time of the ``physkan`` command line: median wall time of fresh processes.

Each command runs ``--repeats`` times as a new process (what a user waits for); the figure
is the median wall time and its ratio to ``python -c pass`` on the same machine, measured
in the same run (so a loaded machine shows in both). Commands: ``import physkan.cli``,
``physkan --help``, ``physkan problems``, ``physkan plugins`` (with the example plugins
installed, if they are); none of them may import torch (``tests/test_cli_startup.py``).

Usage: ``python scripts/bench_cli.py [--repeats 7] [--json docs/bench_cli.json]``.
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


def physkan_command() -> list[str]:
    """The ``physkan`` console script next to this interpreter, else ``python -m physkan.cli``."""
    script = Path(sys.executable).with_name("physkan")
    return [str(script)] if script.exists() else [sys.executable, "-m", "physkan.cli"]


def commands() -> dict[str, list[str]]:
    """Label -> argv of every measured command (the baseline first)."""
    py, cli = sys.executable, physkan_command()
    return {
        "python -c pass": [py, "-c", "pass"],
        "import physkan.cli": [py, "-c", "import physkan.cli"],
        "physkan --help": [*cli, "--help"],
        "physkan problems": [*cli, "problems"],
        "physkan plugins": [*cli, "plugins"],
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_times(argv: list[str], repeats: int, timeout: float = 120.0) -> list[tuple[float, float]]:
    """``(wall, cpu)`` seconds of ``repeats`` fresh runs of ``argv`` (output discarded); the
    CPU time (user + system of the child) barely depends on the machine's load.

    Raises:
        RuntimeError: a run exits with a non-zero status.
    """
    times = []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), _children_cpu()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO)
        times.append((time.perf_counter() - t0, _children_cpu() - c0))
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()[-300:]}")
    return times


def measure(labels: list[str] | None = None, repeats: int = 7) -> dict[str, dict[str, Any]]:
    """Label -> ``{"median_s", "ratio_to_python", "median_cpu_s", "runs_s"}``; runs interleave the commands
    round by round so a change in machine load hits all of them alike."""
    table = commands()
    chosen = ["python -c pass", *[k for k in (labels or list(table)) if k != "python -c pass"]]
    runs: dict[str, list[tuple[float, float]]] = {label: [] for label in chosen}
    for _ in range(repeats):
        for label in chosen:
            runs[label] += run_times(table[label], 1)
    base = statistics.median(w for w, _ in runs["python -c pass"])
    out = {}
    for label, ts in runs.items():
        wall = statistics.median(w for w, _ in ts)
        out[label] = {"median_s": wall, "ratio_to_python": wall / base,
                      "median_cpu_s": statistics.median(c for _, c in ts), "runs_s": [w for w, _ in ts]}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    results = measure(repeats=args.repeats)
    config = {
        "repeats": args.repeats,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "command": "python scripts/bench_cli.py" + (f" --json {args.json}" if args.json else ""),
    }
    for label, row in results.items():
        print(f"{label:22s} median {row['median_s'] * 1000:7.1f} ms wall (x{row['ratio_to_python']:.1f} python), "
              f"{row['median_cpu_s'] * 1000:6.1f} ms CPU")
    if args.json is not None:
        args.json.write_text(json.dumps({"config": config, "commands": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
