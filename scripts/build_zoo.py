"""Build the pretrained zoo in ``zoo/``: discover every built-in problem and register it.

Usage: ``python scripts/build_zoo.py [--zoo zoo] [--problems pendulum tutorial ...] [--all]``.
By default only results with ``recovered: true`` are registered (a pretrained model must
reproduce its formula); ``--all`` registers the others too, tagged ``unverified``. Writes a
summary to ``zoo/BUILD.json`` (problem, formula, recovered, seconds, zoo id). Registering
also draws each model's web-page sidecars, ``zoo/<name>/<version>.png`` (the network) and
``.mathml`` (the formula); ``physkan zoo render --root zoo`` redraws them without retraining.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from physkan.cli import _register
from physkan.discover import discover

BUILTINS = ["pendulum", "relativistic-particle", "oscillator-2d", "schwarzschild", "neo-hookean", "tutorial",
            "coupled-oscillators", "charged-particle", "double-pendulum", "kepler-hamiltonian"]


def _register_compiled(result, zoo: Path) -> list[str]:
    """Compile each discovered formula with the kanpiler and register it as its own model."""
    import dataclasses

    import torch

    from physkan.symbolic import kanpiler

    ids = []
    for output, expr in zip(result.outputs, result.formulas):
        model = kanpiler(result.variables, expr, output=output, dtype=torch.float64)
        single = dataclasses.replace(result, problem=f"{result.problem}-{output.lower()}",
                                     outputs=[output], formulas=[expr], model=model)  # fmt: skip
        ids.append(_register(single, zoo))
    return ids


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", type=Path, default=Path(__file__).resolve().parents[1] / "zoo")
    parser.add_argument("--problems", nargs="+", default=BUILTINS)
    parser.add_argument("--all", action="store_true", help="also register unrecovered results")
    args = parser.parse_args(argv)
    rows = []
    for name in args.problems:
        result = discover(name)
        row = {"problem": name, "formula": "; ".join(result.formula_text),
               "recovered": result.recovered, "seconds": round(result.seconds, 1), "zoo_id": None}  # fmt: skip
        if result.recovered or args.all:
            if result.model is not None:
                row["zoo_id"] = _register(result, args.zoo)
            else:  # formula-only discoveries: store each formula compiled into a KAN
                row["zoo_id"] = "; ".join(_register_compiled(result, args.zoo))
        rows.append(row)
        print(json.dumps(row))
    args.zoo.mkdir(parents=True, exist_ok=True)
    summary = args.zoo / "BUILD.json"
    previous = json.loads(summary.read_text()) if summary.exists() else []
    merged = {row["problem"]: row for row in previous} | {row["problem"]: row for row in rows}
    summary.write_text(json.dumps(list(merged.values()), indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
