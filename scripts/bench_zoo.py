"""Benchmark the zoo server: requests/s and p50/p99 latency for list and download.

Starts a real server (uvicorn, 127.0.0.1, free port) on a temp zoo, uploads a
few models, then hammers ``GET /api/models`` and ``GET .../file`` from
``--concurrency`` threads for a bounded number of requests or seconds.

    python scripts/bench_zoo.py [--json OUT] [--requests 2000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from physkan.zoo.testing import TOKEN, ServerProcess, make_model_file


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def run_load(
    url: str, paths: list[str], *, requests: int, seconds: float, concurrency: int
) -> dict[str, Any]:
    """GET ``paths`` round-robin from ``concurrency`` threads; return throughput and latency."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        nonlocal errors
        with httpx.Client(base_url=url, timeout=30) as client:
            while time.perf_counter() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                try:
                    ok = client.get(paths[i % len(paths)]).status_code == 200
                except httpx.HTTPError:
                    ok = False
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    errors += not ok

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for f in [pool.submit(worker) for _ in range(concurrency)]:
            f.result()
    elapsed = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * _percentile(latencies, 50), 2),
        "p99_ms": round(1000 * _percentile(latencies, 99), 2),
        "mean_ms": round(1000 * statistics.fmean(latencies), 2),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print and optionally write the JSON report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--requests", type=int, default=2000, help="max requests per scenario")
    p.add_argument("--seconds", type=float, default=10.0, help="max seconds per scenario")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--models", type=int, default=20)
    p.add_argument("--tensor-rows", type=int, default=4096, help="size of each model file")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        with ServerProcess(base / "root", light=True) as server:
            sizes = []
            with httpx.Client(base_url=server.url, timeout=60) as client:
                for i in range(args.models):
                    path = base / f"m{i}.h5"
                    make_model_file(path, f"bench-{i:03d}", seed=i, n=args.tensor_rows)
                    sizes.append(path.stat().st_size)
                    r = client.post(
                        "/api/models",
                        content=path.read_bytes(),
                        headers={"Authorization": f"Bearer {TOKEN}"},
                    )
                    r.raise_for_status()
            common = {
                "requests": args.requests,
                "seconds": args.seconds,
                "concurrency": args.concurrency,
            }
            list_paths = ["/api/models?per_page=50", "/api/models?search=bench-01"]
            file_paths = [f"/api/models/bench-{i:03d}/latest/file" for i in range(args.models)]
            report = {
                "machine": platform.platform(),
                "python": platform.python_version(),
                "models": args.models,
                "file_bytes": int(statistics.fmean(sizes)),
                **common,
                "list": run_load(server.url, list_paths, **common),
                "download": run_load(server.url, file_paths, **common),
            }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
