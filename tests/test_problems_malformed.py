"""Malformed problem files and data files are refused at load time with one clear line.

Each test is one item of issue 13 (section 4): sizes, non-finite or huge constants (which
used to hang sympy), too-short or non-numeric data files, unknown library/basis names.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from physkan.problems import ProblemError, make_dataset, problem_from_dict
from physkan.problems.datasets import MIN_FILE_ROWS, split_rows
from physkan.problems.expressions import ExpressionError, check_bounded, parse_expression
from physkan.problems.spec import MAX_SAMPLES


def regression(**overrides: Any) -> dict[str, Any]:
    """A valid one-variable regression problem with ``overrides`` merged per table."""
    data: dict[str, Any] = {
        "name": "t",
        "type": "regression",
        "system": {"variables": ["x"], "target": "sin(x)"},
        "data": {"n_train": 20, "n_test": 5, "ranges": {"x": [-1, 1]}},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def load_error(data: dict[str, Any]) -> str:
    with pytest.raises(ProblemError) as info:
        problem_from_dict(data, source="p.toml")
    message = str(info.value)
    assert "\n" not in message and message.startswith("p.toml: ")
    return message


@pytest.mark.parametrize("field", ["n_train", "n_test"])
def test_sample_counts_are_bounded(field: str) -> None:
    message = load_error(regression(data={field: 1_000_000_000_000}))
    assert f"data.{field}: at most {MAX_SAMPLES:,}" in message
    assert "1,000,000,000,000" in message


def test_too_few_samples_named() -> None:
    assert "data.n_train" in load_error(regression(data={"n_train": 1}))
    assert "data.n_test" in load_error(regression(data={"n_test": 0}))


def test_huge_network_refused() -> None:
    message = load_error(regression(model={"width": [1, 100_000, 100_000, 1]}))
    assert "model.width" in message and "spline coefficients" in message


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("1/(x - x)", "not finite"),
        ("x/0", "not finite"),
        ("log(0)*x", "not finite"),
        ("sqrt(-1)*x", "not a real number"),
        ("exp(10000)*x", "too large"),
    ],
)
def test_non_finite_constants_refused(target: str, expected: str) -> None:
    message = load_error(regression(system={"target": target}))
    assert message.startswith("p.toml: system.target: ") and expected in message


@pytest.mark.parametrize(
    "target", ["9**9**9**9", "x + 10**10**8", "x*10**(-10**8)", "x^9^9^9", "sin(2**2**2**2**2**2)"]
)
def test_power_towers_refused_quickly(target: str) -> None:
    start = time.perf_counter()
    message = load_error(regression(system={"target": target}))
    assert time.perf_counter() - start < 5
    assert "system.target" in message and "beyond what a formula can use" in message


def test_constants_count_in_the_bound() -> None:
    """A huge constant raised to itself would make sympy build a 10^300-digit integer."""
    message = load_error(regression(system={"target": "c**c*x", "constants": {"c": 1e300}}))
    assert "system.target" in message and "c**c" in message
    assert "system.constants" in load_error(regression(system={"constants": {"c": float("inf")}}))


def test_reasonable_formulas_still_parse() -> None:
    expr = parse_expression("x**2/2 + sin(pi*x) + 10**300*x*1e-300 + 2**-1074", ["x"])
    assert str(expr).startswith("x**2/2")
    assert parse_expression("x**(10**10)", ["x"]).free_symbols  # big but exact, no hang
    with pytest.raises(ExpressionError, match="beyond"):
        check_bounded("J0(x**9**9**9)")  # unknown functions: only the arguments are bounded


def test_unknown_library_name_at_load() -> None:
    message = load_error(regression(discover={"library": ["x", "sine"]}))
    assert "discover.library: [1]: unknown symbolic function 'sine'" in message
    assert "sin" in message  # the suggestion / the list of available names
    assert "beyond" in load_error(regression(discover={"library": ["x**9**9**9"]}))


def test_library_aliases_and_composites_accepted() -> None:
    spec = problem_from_dict(regression(discover={"library": ["x^2", "ln", "sin(x)+x"]}))
    assert spec.discover.library == ["x^2", "ln", "sin(x)+x"]


def test_unknown_basis_and_base_function_at_load() -> None:
    message = load_error(regression(model={"basis": "bsplines"}))
    assert "model.basis: unknown basis family 'bsplines'" in message and "bspline" in message
    assert "model.base_fun: unknown base function 'relu'" in load_error(
        regression(model={"base_fun": "relu"})
    )


def test_augment_checked_at_load() -> None:
    message = load_error(regression(discover={"augment": {"a": "x + nosuch"}}))
    assert "discover.augment.a" in message and "nosuch" in message
    assert "discover.augment.x" in load_error(regression(discover={"augment": {"x": "x**2"}}))


def test_steps_override_gives_problem_error() -> None:
    spec = problem_from_dict(regression())
    with pytest.raises(ProblemError, match=r"train\.steps: at most"):
        spec.updated({"train.steps": 10**12})


def file_problem(path: Path) -> dict[str, Any]:
    return {"name": "f", "type": "regression", "system": {"variables": ["x"]},
            "data": {"file": str(path), "n_train": 20, "n_test": 5}}  # fmt: skip


@pytest.mark.parametrize("rows", [1, 2])
def test_csv_with_too_few_rows(tmp_path: Path, rows: int) -> None:
    path = tmp_path / "d.csv"
    path.write_text("x,y\n" + "".join(f"{i}.5,{i}.0\n" for i in range(rows)))
    spec = problem_from_dict(file_problem(path))
    with pytest.raises(ProblemError, match=rf"d\.csv: only {rows} data row\(s\); need at least 3"):
        make_dataset(spec)


def test_csv_with_three_rows_splits_two_one(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("x,y\n0,0\n1,1\n2,4\n")
    data = make_dataset(problem_from_dict(file_problem(path)))
    assert (data.n_train, data.n_test) == (2, 1)
    with pytest.raises(ValueError, match="at least 3 rows"):
        split_rows(MIN_FILE_ROWS - 1, 10, 10, 0)


def test_hdf5_string_column_named(tmp_path: Path) -> None:
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as fh:
        fh["x"] = np.linspace(0, 1, 10)
        fh["y"] = np.array([b"a"] * 10)
    spec = problem_from_dict(file_problem(path))
    with pytest.raises(ProblemError, match=r"d\.h5: column 'y' is not numeric"):
        make_dataset(spec)


def test_hdf5_unused_string_column_ignored(tmp_path: Path) -> None:
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as fh:
        fh["x"] = np.linspace(0, 1, 10)
        fh["y"] = np.linspace(0, 2, 10)
        fh["label"] = np.array([b"a"] * 10)
    assert make_dataset(problem_from_dict(file_problem(path))).n_train == 8


def test_csv_nan_cell_named(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("x,y\n0,0\n1,nan\n2,4\n3,9\n")
    with pytest.raises(ProblemError, match=r"d\.csv: column 'y' has 1 missing/NaN/inf"):
        make_dataset(problem_from_dict(file_problem(path)))


def test_data_file_refused_for_sampled_types(tmp_path: Path) -> None:
    data = {"name": "p", "type": "conservation",
            "system": {"state": ["x", "p"], "dynamics": ["p", "-x"]},
            "data": {"file": str(tmp_path / "d.csv")}}  # fmt: skip
    message = load_error(data)
    assert "data.file: a conservation problem samples its data from the ground truth" in message


def test_lagrangian_without_truth_needs_a_trajectory_file() -> None:
    data = {"name": "p", "type": "lagrangian", "system": {"coordinates": ["q"]}}
    assert "system.lagrangian: required unless [data].file gives the data" in load_error(data)


def test_too_many_coordinates_refused() -> None:
    coords = [f"q{i}" for i in range(17)]
    data = {"name": "p", "type": "lagrangian", "system": {"coordinates": coords}}
    assert "system.coordinates: at most 16 coordinates" in load_error(data)


def test_huge_number_literal_refused_quickly() -> None:
    start = time.perf_counter()
    message = load_error(regression(system={"target": "x*1e999999"}))
    assert time.perf_counter() - start < 5 and "out of range" in message
