"""Benchmark the tutorial discovery: physkan ``discover`` vs pykan's tutorial flow.

The problem is ``problems/tutorial.toml``, ``f(x, y) = exp(sin(pi*x) + y**2)`` on
``[-1, 1]^2``. physkan runs its whole pipeline in-process (:func:`physkan.discover`, what
``physkan discover --problem problems/tutorial.toml`` does). When pykan is importable (it
is never a dependency), its README/tutorial flow runs on the *same* data in the same run:
``KAN([2,5,1], grid=5, k=3)`` → fit LBFGS 50 steps ``lamb=0.001`` → prune → fit →
``auto_symbolic(lib)`` → fit → ``symbolic_formula``. Both formulas are checked against the
truth with :func:`physkan.symbolic.equivalent` (relative tolerance 1e-6).

Usage: ``PYTHONPATH=/path/to/pykan python scripts/bench_tutorial.py [--json OUT]``.
The machine may be shared: compare the ratio, not absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sympy
import torch

REPO = Path(__file__).resolve().parents[1]
PROBLEM = REPO / "problems" / "tutorial.toml"
TRUTH = "exp(sin(pi*x) + y**2)"
RANGES = {"x": (-1.0, 1.0), "y": (-1.0, 1.0)}
LIBRARY = ["x", "x^2", "sin", "exp"]


def _check(formula: sympy.Expr | str) -> tuple[bool, str]:
    from physkan.symbolic import equivalent

    eq = equivalent(formula, TRUTH, ["x", "y"], RANGES)
    return bool(eq.equivalent), eq.reason


def run_physkan() -> dict[str, Any]:
    """physkan's full discovery pipeline on the tutorial problem."""
    from physkan.discover import discover

    t0 = time.perf_counter()
    result = discover(str(PROBLEM))
    seconds = time.perf_counter() - t0
    formula = result.formula_text[0]
    ok, why = _check(result.formulas[0])
    return {"seconds": seconds, "formula": formula, "recovered": ok, "reason": why,
            "test_rmse": result.metrics.get("test_rmse")}  # fmt: skip


def _pykan_flow(KAN, dataset: dict[str, torch.Tensor], dtype: torch.dtype) -> tuple[sympy.Expr, float]:
    """pykan's README flow; returns its formula (in ``x``, ``y``) and the wall time."""
    old_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    data = {k: v.to(dtype) for k, v in dataset.items()}
    try:
        with tempfile.TemporaryDirectory() as ckpt:
            t0 = time.perf_counter()
            model = KAN(width=[2, 5, 1], grid=5, k=3, seed=0, ckpt_path=os.path.join(ckpt, "model"))
            model.fit(data, opt="LBFGS", steps=50, lamb=0.001, log=1000)
            model = model.prune()
            model.fit(data, opt="LBFGS", steps=50, log=1000)
            model.auto_symbolic(lib=LIBRARY, verbose=0)
            model.fit(data, opt="LBFGS", steps=50, log=1000)
            expr = model.symbolic_formula()[0][0]
            seconds = time.perf_counter() - t0
    finally:
        torch.set_default_dtype(old_dtype)
    x1, x2 = sympy.Symbol("x_1"), sympy.Symbol("x_2")
    expr = sympy.sympify(expr).subs({x1: sympy.Symbol("x", real=True), x2: sympy.Symbol("y", real=True)})
    return expr, seconds


def run_pykan(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor,
              y_test: torch.Tensor) -> dict[str, Any] | None:  # fmt: skip
    """pykan's tutorial flow on the same data, or ``None`` when pykan is not importable.

    Runs in float64 (as pykan's tutorials set); if that run raises (pykan 0.2.8 can fail in
    ``curve2coef`` after pruning), the float32 default of its README is tried and the error kept.
    """
    try:
        from kan import KAN  # type: ignore[import-not-found]
    except ImportError:
        return None
    dataset = {"train_input": x_train, "train_label": y_train, "test_input": x_test, "test_label": y_test}
    errors: dict[str, str] = {}
    for dtype in (torch.float64, torch.float32):
        try:
            expr, seconds = _pykan_flow(KAN, dataset, dtype)
        except Exception as exc:  # noqa: BLE001 - pykan failures are reported, not fatal
            errors[str(dtype)] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        from physkan.symbolic.simplify import formula_error

        ok, why = _check(expr)
        rmse = formula_error(expr, ["x", "y"], x_test.numpy(), y_test.numpy().reshape(-1))
        return {"seconds": seconds, "formula": str(sympy.N(expr, 6)), "recovered": ok, "reason": why,
                "test_rmse": rmse, "dtype": str(dtype), "errors": errors}  # fmt: skip
    return {"seconds": None, "formula": None, "recovered": False, "reason": "pykan failed", "errors": errors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    args = parser.parse_args(argv)

    from physkan.problems import load_problem, make_dataset

    spec = load_problem(str(PROBLEM))
    torch.manual_seed(spec.model.seed)
    data = make_dataset(spec)
    ours = run_physkan()
    print(f"physkan: {ours['seconds']:.2f} s, recovered={ours['recovered']}, formula={ours['formula']}")
    theirs = run_pykan(data.x_train.double(), data.y_train.double(), data.x_test.double(), data.y_test.double())
    out: dict[str, Any] = {
        "problem": str(PROBLEM.relative_to(REPO)), "truth": TRUTH, "physkan": ours, "pykan": theirs,
        "torch": torch.__version__, "python": sys.version.split()[0], "machine": platform.machine(),
        "threads": torch.get_num_threads(),
    }  # fmt: skip
    if theirs is None:
        print("pykan: not importable (skipped)")
    elif theirs["seconds"] is None:
        print(f"pykan: failed ({theirs['errors']})")
    else:
        out["ratio_pykan_over_physkan"] = theirs["seconds"] / ours["seconds"]
        print(f"pykan:   {theirs['seconds']:.2f} s, recovered={theirs['recovered']}, formula={theirs['formula']}")
        print(f"ratio pykan/physkan: {out['ratio_pykan_over_physkan']:.2f}x")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
