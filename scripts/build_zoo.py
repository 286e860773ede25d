"""Build the pretrained zoo in ``zoo/``: discover every built-in problem and register it.

Usage: ``python scripts/build_zoo.py [--zoo zoo] [--problems pendulum tutorial ...] [--all]``.
By default only results with ``recovered: true`` are registered (a pretrained model must
reproduce its formula); ``--all`` registers the others too, tagged ``unverified``. Writes a
summary to ``zoo/BUILD.json`` (problem, formula, recovered, seconds, zoo id).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from physkan.cli import _register
from physkan.discover import discover

BUILTINS = ["pendulum", "relativistic-particle", "oscillator-2d", "schwarzschild", "neo-hookean", "tutorial"]


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
            row["zoo_id"] = _register(result, args.zoo)
        rows.append(row)
        print(json.dumps(row))
    args.zoo.mkdir(parents=True, exist_ok=True)
    (args.zoo / "BUILD.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
