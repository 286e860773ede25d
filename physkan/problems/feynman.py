"""The AI Feynman benchmark as regression problems.

The CSV format (``/work/shared/data/feynman_dev.csv``) has the columns ``name`` (equation
id such as ``I.12.1``), ``output`` (the target's name), ``formula`` (sympy syntax with
``ln`` and ``arcsin`` allowed) and ``variables`` (space-separated ``name:low:high``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ProblemError
from .expressions import ExpressionError, check_name, parse_expression
from .loader import problem_from_dict
from .spec import ProblemSpec

__all__ = ["FeynmanEquation", "feynman_problem", "read_feynman_csv"]

_COLUMNS = ("name", "output", "formula", "variables")


@dataclass(frozen=True)
class FeynmanEquation:
    """One benchmark equation: ``output = formula(variables)`` on the box ``ranges``."""

    name: str
    output: str
    formula: str
    variables: list[str]
    ranges: dict[str, tuple[float, float]]


def _parse_variables(text: str, where: str) -> tuple[list[str], dict[str, tuple[float, float]]]:
    names: list[str] = []
    ranges: dict[str, tuple[float, float]] = {}
    for item in text.split():
        parts = item.split(":")
        if len(parts) != 3:
            raise ProblemError(f"{where}: variable {item!r} is not name:low:high")
        name = parts[0]
        try:
            check_name(name)
            low, high = float(parts[1]), float(parts[2])
        except ValueError as err:
            raise ProblemError(f"{where}: variable {item!r}: {err}") from None
        if not low < high:
            raise ProblemError(f"{where}: variable {name!r} needs low < high, got {item!r}")
        names.append(name)
        ranges[name] = (low, high)
    if not names:
        raise ProblemError(f"{where}: no variables")
    return names, ranges


def read_feynman_csv(path: str | Path) -> list[FeynmanEquation]:
    """Read a Feynman-benchmark CSV; every formula is parsed and checked against its variables.

    Raises:
        ProblemError: a missing column, a malformed variable spec, or a formula that does
            not parse or uses names that are not among its variables (message names the row).
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
            header = list(rows[0]) if rows else []
    except OSError as err:
        raise ProblemError(f"{path}: cannot read ({err.strerror})", source=path) from None
    missing = [c for c in _COLUMNS if c not in header]
    if missing:
        raise ProblemError(
            f"{path}: missing column(s) {', '.join(missing)}; available: {', '.join(header)}",
            source=path,
        )
    equations = []
    for line, row in enumerate(rows, start=2):
        where = f"{path}:{line} ({row['name']})"
        names, ranges = _parse_variables(row["variables"] or "", where)
        try:
            parse_expression(row["formula"], names)
        except ExpressionError as err:
            raise ProblemError(f"{where}: {err}", source=path) from None
        equations.append(
            FeynmanEquation(
                row["name"].strip(), row["output"].strip(), row["formula"].strip(), names, ranges
            )
        )
    return equations


def feynman_problem(
    eq: FeynmanEquation,
    *,
    n_train: int = 1000,
    n_test: int = 1000,
    seed: int = 0,
    noise: float = 0.0,
    width: list[int | list[int]] | None = None,
    **sections: dict[str, Any],
) -> ProblemSpec:
    """A regression :class:`ProblemSpec` named ``feynman-<eq.name>`` for one equation.

    ``sections`` give extra tables (``model={"grid": 10}``, ``train={"steps": 50}`` ...).
    The output keeps its benchmark name unless it collides with a variable, then it gets
    a ``_out`` suffix.
    """
    output = eq.output if eq.output not in eq.variables else f"{eq.output}_out"
    data: dict[str, Any] = {
        "name": f"feynman-{eq.name}",
        "type": "regression",
        "description": f"AI Feynman {eq.name}: {eq.output} = {eq.formula}",
        "system": {"variables": list(eq.variables), "target": eq.formula, "outputs": [output]},
        "data": {
            "n_train": n_train,
            "n_test": n_test,
            "seed": seed,
            "noise": noise,
            "ranges": {k: list(v) for k, v in eq.ranges.items()},
        },
    }
    for key, table in sections.items():
        data[key] = {**data.get(key, {}), **table}
    if width is not None:
        data.setdefault("model", {})["width"] = width
    return problem_from_dict(data, source=f"feynman:{eq.name}")
