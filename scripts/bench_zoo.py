"""Benchmark the zoo server: requests/s, p50/p99 latency and errors for list and download.

Starts a real server (``python -m physkan.zoo serve --workers N``, 127.0.0.1, free port)
on a temp zoo, uploads ``--models`` models (~13 KB files), measures the idle RSS of the
server processes, then drives ``GET /api/models`` and ``GET .../file`` with ``wrk``
(``wrk -t2 -c32 -d10s --latency``), else ``oha``, else -- only when neither is installed --
a Python thread-pool client (which measures itself more than the server). The report says
which client ran. Install wrk with ``apt-get install wrk`` (Debian/Ubuntu); this script
installs nothing.

    python scripts/bench_zoo.py [--json docs/bench_zoo.json] [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from physkan.zoo.testing import TOKEN, ServerProcess, make_model_file

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
_LUA = """paths = {%s}
i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def _ms(text: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return round(float(m.group(1)) * _UNITS[m.group(2)], 3)


def parse_wrk(out: str) -> dict[str, Any]:
    """req/s, p50/p99 (ms), request count and errors from ``wrk --latency`` output."""
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    total = int(re.search(r"([0-9]+) requests in", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+([0-9]+)", out)
    errors += int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors += sum(int(x) for x in m.groups()) if m else 0
    return {
        "requests": total,
        "errors": errors,
        "requests_per_s": rps,
        "p50_ms": p50,
        "p99_ms": p99,
    }


def run_wrk(url: str, paths: list[str], args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Drive ``paths`` round-robin with wrk; parsed figures plus the command line."""
    script = tmp / f"paths-{len(paths)}-{abs(hash(tuple(paths)))}.lua"
    script.write_text(_LUA % ", ".join(json.dumps(p) for p in paths))
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds:g}s"]
    cmd += ["--latency", "--timeout", "10s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 60).stdout
    return {**parse_wrk(out), "command": " ".join(cmd[:-3] + ["<paths.lua>", cmd[-1]])}


def run_oha(url: str, paths: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Drive the first of ``paths`` with oha (one URL: oha does not rotate)."""
    cmd = ["oha", "-c", str(args.connections), "-z", f"{args.seconds:g}s", "--no-tui", "-j"]
    cmd.append(url + paths[0])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 60).stdout
    data = json.loads(out)
    codes = data.get("statusCodeDistribution", {})
    ok = sum(n for c, n in codes.items() if str(c).startswith(("2", "3")))
    total = sum(codes.values())
    return {
        "requests": total,
        "errors": total - ok + sum(data.get("errorDistribution", {}).values()),
        "requests_per_s": round(data["summary"]["requestsPerSec"], 1),
        "p50_ms": round(1000 * data["latencyPercentiles"]["p50"], 3),
        "p99_ms": round(1000 * data["latencyPercentiles"]["p99"], 3),
        "command": " ".join(cmd),
    }


def run_python(url: str, paths: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Fallback: a thread-pool httpx client (the client, not the server, is the bottleneck)."""
    import statistics
    import threading
    from concurrent.futures import ThreadPoolExecutor

    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + args.seconds

    def worker(k: int) -> None:
        nonlocal errors
        with httpx.Client(base_url=url, timeout=30) as client:
            i = k
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    ok = client.get(paths[i % len(paths)]).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    errors += not ok
                i += 1

    start = time.perf_counter()
    with ThreadPoolExecutor(args.connections) as pool:
        list(pool.map(worker, range(args.connections)))
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "errors": errors,
        "requests_per_s": round(len(ordered) / (time.perf_counter() - start), 1),
        "p50_ms": round(1000 * statistics.median(ordered), 3),
        "p99_ms": round(1000 * ordered[int(0.99 * (len(ordered) - 1))], 3),
        "command": f"python thread pool, {args.connections} threads, {args.seconds:g} s",
    }


def server_rss_mb(pid: int) -> dict[str, float]:
    """Resident set size (MB) of the server process and its children (Linux /proc)."""
    out: dict[str, float] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            cmdline = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        if "resource_tracker" not in cmdline:  # multiprocessing's helper, not a server
            kb = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
            out[f"{'worker' if p != pid else 'supervisor'} {p}"] = round(kb / 1024, 1)
        todo += [int(c) for c in children]
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print and optionally write the JSON report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds per scenario")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="server workers")
    p.add_argument("--models", type=int, default=20)
    p.add_argument("--tensor-rows", type=int, default=64, help="rows per tensor (~13 KB file)")
    p.add_argument("--client", choices=["auto", "wrk", "oha", "python"], default="auto")
    args = p.parse_args(argv)
    client = args.client
    if client == "auto":
        client = next((c for c in ("wrk", "oha") if shutil.which(c)), "python")
        if client == "python":
            print("wrk/oha not found (apt-get install wrk): using the slow Python client")
    elif client != "python" and not shutil.which(client):
        p.error(f"--client {client}: not on PATH (Debian/Ubuntu: apt-get install wrk)")

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        with ServerProcess(base / "root", workers=args.workers) as server:
            sizes = []
            with httpx.Client(base_url=server.url, timeout=60) as http:
                for i in range(args.models):
                    path = base / f"m{i}.h5"
                    make_model_file(path, f"bench-{i:03d}", seed=i, n=args.tensor_rows)
                    sizes.append(path.stat().st_size)
                    r = http.post(
                        "/api/models",
                        content=path.read_bytes(),
                        headers={"Authorization": f"Bearer {TOKEN}"},
                    )
                    r.raise_for_status()
                health = http.get("/healthz").json()
            time.sleep(2.0)
            rss = server_rss_mb(server.proc.pid)
            list_paths = ["/api/models?per_page=50"]
            file_paths = [f"/api/models/bench-{i:03d}/latest/file" for i in range(args.models)]
            scenarios = {}
            for label, paths in (("list", list_paths), ("download", file_paths)):
                if client == "wrk":
                    scenarios[label] = run_wrk(server.url, paths, args, base)
                elif client == "oha":
                    scenarios[label] = run_oha(server.url, paths, args)
                else:
                    scenarios[label] = run_python(server.url, paths, args)
    report = {
        "machine": f"{platform.platform()}, {os.cpu_count()} cores (client and server share them)",
        "python": platform.python_version(),
        "client": client,
        "workers": args.workers,
        "connections": args.connections,
        "seconds": args.seconds,
        "models": args.models,
        "file_bytes": round(sum(sizes) / len(sizes)),
        "server_torch_loaded": health.get("torch_loaded"),
        "idle_rss_mb": rss,
        **scenarios,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
