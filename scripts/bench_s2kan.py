"""Benchmark S2KAN against the KAN prune + auto-symbolic flow on the Feynman dev set.

Usage::

    python scripts/bench_s2kan.py [--limit N] [--skip N] [--method both|s2kan|kan] [--jobs J]
                                  [--timeout S] [--json OUT] [--merge A.json B.json ...]

Both methods see the same problem spec (:func:`physkan.problems.feynman.feynman_problem`)
and the same sampled data (:func:`physkan.problems.make_dataset`) and run the same
:func:`physkan.discover.discover` pipeline (regression strategy: Occam structure search). The
KAN column trains KANs and makes them symbolic by prune + auto-symbolic; the S2KAN column sets
``[model] kind = "s2kan"``, so every network of the search is an S2KAN whose MDL gates choose
each edge's terms. The two non-network structure tests of the search (rank-one product and
product-with-one-block, fitted by alternating least squares) are shared by both columns. The built-in
problems join the Feynman dev set (``--no-builtin`` leaves them out); physics problems
(Lagrangian, conservation, metric) are scored by their strategy's own recovery check and test
metric (no formula DL: there is no ``y`` to code).

Columns: exact recovery (the ground-truth check of the regression strategy: closed form, no
spline left, :func:`~physkan.symbolic.equivalence.equivalent` with the spec's ranges), test
RMSE, a common formula description length (see :func:`formula_dl`) and wall time. Every run
is capped at ``--timeout`` seconds (counted as not recovered). ``--merge`` joins JSON files of
separate runs (e.g. one per method) into one table.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import signal
import statistics
import time
from typing import Any

import numpy as np
import sympy
import torch

DATA = "/work/shared/data/feynman_dev.csv"
BUILTIN = ["feynman-I.12.1", "feynman-I.14.3", "feynman-I.39.22", "feynman-II.8.31", "tutorial", "neo-hookean",
           "pendulum", "relativistic-particle", "oscillator-2d", "schwarzschild"]  # fmt: skip
METHODS = ("s2kan", "kan")


class _Timeout(Exception):
    pass


def _alarm(signum, frame):  # noqa: ANN001, ARG001 - signal handler signature
    raise _Timeout


# ----------------------------------------------------------------------------- problems
def _specs(limit: int | None, builtin: bool, skip: int = 0) -> list[tuple[str, str, Any]]:
    """``(set, name, spec)`` of every problem (Feynman dev rows ``skip:limit``)."""
    from physkan.problems import load_problem
    from physkan.problems.feynman import feynman_problem, read_feynman_csv

    out = [("feynman-dev", eq.name, feynman_problem(eq)) for eq in read_feynman_csv(DATA)[skip:limit]]
    if builtin:
        out += [("builtin", name, load_problem(name)) for name in BUILTIN]
    return out


# ----------------------------------------------------------------------------- scoring
def _numeric_rmse(expr: sympy.Expr, names: list[str], x: torch.Tensor, y: torch.Tensor) -> float:
    from physkan.symbolic.parse import lambdify_numpy

    try:
        fn = lambdify_numpy(expr, names)
        with np.errstate(all="ignore"):
            pred = np.broadcast_to(np.asarray(fn(x.double().numpy()), dtype=float), (x.shape[0],))
        return float(np.sqrt(np.mean((pred - y.double().reshape(-1).numpy()) ** 2)))
    except Exception:  # noqa: BLE001 - an unevaluable formula simply scores nan
        return float("nan")


def formula_dl(expr: sympy.Expr, rmse: float, y: torch.Tensor, resolution: float = 1e-5) -> float:
    """A description length (bits) both methods are scored by, from the exported formula only:
    ``(N/2)·log2(RMSE² + floor) + ops·log2(K) + constants·½·log2(N) + splines·(G+k)·½·log2(N)``
    with ``floor = (resolution·std y)²``, ``K = 32`` operators/functions, every float constant
    a parameter and every spline left in the formula 8 parameters."""
    n = y.numel()
    floor = (resolution * float(y.double().std())) ** 2
    per_param = 0.5 * math.log2(max(n, 2))
    mse = rmse**2 if math.isfinite(rmse) else float(y.double().var()) * 1e6
    data = 0.5 * n * math.log2(mse + floor + 1e-300)
    ops = sympy.count_ops(expr)
    floats = sum(1 for a in expr.atoms(sympy.Number) if not (isinstance(a, sympy.Rational) and a.q < 100))
    splines = len(expr.atoms(sympy.core.function.AppliedUndef))
    return data + ops * math.log2(32) + floats * per_param + splines * 8 * per_param


def _exact(spec, formulas: list[sympy.Expr], data) -> bool:
    """The regression strategy's ground-truth check, after a cheap numeric screen (so that
    sympy's ``simplify`` never runs on formulas that are plainly wrong)."""
    from physkan.problems.physics_makers import truth_expressions
    from physkan.strategies.common import sample_ranges
    from physkan.symbolic.equivalence import equivalent

    truths = truth_expressions(spec)
    if not truths or any(f.atoms(sympy.core.function.AppliedUndef) for f in formulas):
        return False
    for o, (f, t) in enumerate(zip(formulas, truths, strict=True)):
        rmse = _numeric_rmse(f, data.inputs, data.x_test, data.y_test[:, o])
        scale = float(data.y_test[:, o].double().abs().max()) or 1.0
        if not math.isfinite(rmse) or rmse > 1e-4 * scale:
            return False
        if not equivalent(f, t, data.inputs, sample_ranges(spec, data.inputs)).equivalent:
            return False
    return True


# ----------------------------------------------------------------------------- runners
#: ``--networks-only``: leave the search's network-free product tests out (both methods).
NETWORKS_ONLY = False


def _drop_product_tests() -> None:
    """Filter the product candidates out of the regression strategy's search (this process)."""
    from physkan.strategies import regression

    if getattr(regression, "_bench_networks_only", False):
        return
    candidates = regression._regression_candidates
    regression._regression_candidates = lambda spec, data: [c for c in candidates(spec, data) if not c.product]
    regression._bench_networks_only = True


def _run(spec, method: str):
    """``(Discovery, Dataset)`` of one method: ``"s2kan"`` is the same discovery with
    ``[model] kind = "s2kan"`` (the structure search is shared; every network it trains is an
    S2KAN whose MDL gates choose the edges' terms)."""
    from physkan.discover import discover
    from physkan.problems import make_dataset

    if method == "s2kan":
        spec = spec.updated({"model.kind": "s2kan"})
    if NETWORKS_ONLY:
        _drop_product_tests()
    res = discover(spec)
    torch.manual_seed(spec.model.seed)
    return res, make_dataset(spec)


def run_one(task: tuple[str, str, str, Any, int]) -> dict[str, Any]:
    """One ``(method, set, name, spec, timeout)`` run -> a result row."""
    method, group, name, spec, timeout = task
    torch.set_num_threads(1)
    row: dict[str, Any] = {"method": method, "set": group, "name": name}
    t0 = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout)
    try:
        res, data = _run(spec, method)
        report = res.symbolic_report or ""
        row["structure"] = report.rsplit("structure: ", 1)[-1] if "structure: " in report else ""
        signal.alarm(timeout)  # the check gets its own budget
        row["seconds"] = time.perf_counter() - t0
        f = res.formulas[0]
        if spec.type == "regression":
            rmse = _numeric_rmse(f, data.inputs, data.x_test, data.y_test[:, 0])
            row.update(formula=str(f), test_rmse=rmse, dl_bits=formula_dl(f, rmse, data.y_test[:, 0]),
                       exact=_exact(spec, res.formulas, data))  # fmt: skip
        else:  # physics losses: the strategy's own check (symbolic + rollout), its test metric
            row.update(formula="; ".join(map(str, res.formulas)), test_rmse=res.metrics.get("test_rmse", math.nan),
                       dl_bits=math.nan, exact=bool(res.recovered))  # fmt: skip
    except _Timeout:
        row.update(exact=False, error=f"timeout ({timeout}s)")
    except Exception as exc:  # noqa: BLE001 - one failure must not stop the benchmark
        row.update(exact=False, error=repr(exc)[:300])
    finally:
        signal.alarm(0)
    row.setdefault("seconds", time.perf_counter() - t0)
    return row


# ----------------------------------------------------------------------------- report
def _fmt(v: float | None, spec: str) -> str:
    return "—" if v is None or not math.isfinite(v) else format(v, spec)


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per set and method: recovery rate, median test RMSE and DL, mean seconds."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for group in sorted({r["set"] for r in rows}):
        out[group] = {}
        for method in METHODS:
            rs = [r for r in rows if r["set"] == group and r["method"] == method]
            if not rs:
                continue
            fin = [r for r in rs if math.isfinite(r.get("test_rmse", math.nan))]
            out[group][method] = {
                "n": len(rs),
                "exact": sum(bool(r["exact"]) for r in rs),
                "rate": sum(bool(r["exact"]) for r in rs) / len(rs),
                "median_rmse": statistics.median([r["test_rmse"] for r in fin]) if fin else math.nan,
                "median_dl": statistics.median([r["dl_bits"] for r in fin]) if fin else math.nan,
                "mean_seconds": statistics.fmean([r["seconds"] for r in rs]),
                "failures": sum("error" in r for r in rs),
                # exact rows found by the search's shared, network-free product tests
                "by_product_test": sum(bool(r["exact"]) and r.get("structure", "").startswith("product") for r in rs),
            }
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    """Summary table plus a per-problem table."""
    lines = [
        "| set | method | exact recovery | of which by the shared product tests | median test RMSE | "
        "median DL (bits) | mean wall time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    label = {"s2kan": "S2KAN", "kan": "KAN prune + auto-symbolic"}
    for group, per in summary(rows).items():
        for method, s in per.items():
            lines.append(
                f"| {group} | {label[method]} | {s['exact']}/{s['n']} ({s['rate']:.0%}) | {s['by_product_test']} | "
                f"{_fmt(s['median_rmse'], '.2e')} | {_fmt(s['median_dl'], '.0f')} | {s['mean_seconds']:.1f} |"
            )
    lines += ["", "| problem | S2KAN exact | S2KAN RMSE | S2KAN DL | S2KAN s | KAN exact | KAN RMSE | KAN DL | KAN s |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    by = {(r["name"], r["method"]): r for r in rows}
    for name in dict.fromkeys(r["name"] for r in rows):
        cells = [name]
        for method in METHODS:
            r = by.get((name, method))
            if r is None:
                cells += ["", "", "", ""]
                continue
            mark = "yes" if r["exact"] else ("timeout" if "timeout" in r.get("error", "") else "no")
            cells += [mark, _fmt(r.get("test_rmse"), ".1e"), _fmt(r.get("dl_bits"), ".0f"), f"{r['seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="first N Feynman dev equations")
    ap.add_argument("--skip", type=int, default=0, help="leave out the first N (to split a run)")
    ap.add_argument("--only", default=None, help="comma-separated problem names to run")
    ap.add_argument("--method", choices=["both", *METHODS], default="both")
    ap.add_argument("--no-builtin", action="store_true", help="leave out the built-in problems")
    ap.add_argument("--timeout", type=int, default=180, help="seconds per problem and method")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--networks-only", action="store_true",
                    help="leave out the shared product tests, so only the networks find formulas")
    ap.add_argument("--json", default=None)
    ap.add_argument("--merge", nargs="*", default=None, help="JSON files to join (no runs)")
    args = ap.parse_args()
    global NETWORKS_ONLY
    NETWORKS_ONLY = args.networks_only
    if args.merge:
        rows = [r for path in args.merge for r in json.load(open(path))["rows"]]  # noqa: SIM115
    else:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        methods = METHODS if args.method == "both" else (args.method,)
        only = set(args.only.split(",")) if args.only else None
        tasks = [(m, g, n, s, args.timeout) for g, n, s in _specs(args.limit, not args.no_builtin, args.skip)
                 if only is None or n in only for m in methods]  # fmt: skip
        rows = []
        ctx = mp.get_context("fork")
        with ctx.Pool(args.jobs, maxtasksperchild=1) as pool:
            for row in pool.imap(run_one, tasks):
                rows.append(row)
                print(f"{row['method']:<6} {row['name']:<16} exact={row['exact']!s:<5} "
                      f"rmse={row.get('test_rmse', math.nan):.3g} DL={row.get('dl_bits', math.nan):.0f} "
                      f"t={row['seconds']:.1f}s {row.get('error', '')}", flush=True)  # fmt: skip
                if args.json:  # partial results survive an interrupted run
                    with open(args.json, "w") as fh:
                        json.dump({"rows": rows}, fh, indent=1)
    table = markdown(rows)
    print(table)
    for group, per in summary(rows).items():
        rates = ", ".join(f"{m}: {s['exact']}/{s['n']} = {s['rate']:.0%}" for m, s in per.items())
        print(f"exact recovery on {group}: {rates}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "summary": summary(rows), "table": table}, fh, indent=1)


if __name__ == "__main__":
    main()
