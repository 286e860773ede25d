"""Dataset creation: sampling, noise, CSV/HDF5 files, the Feynman CSV, data-maker dispatch."""

from __future__ import annotations

import csv
from pathlib import Path

import h5py
import numpy as np
import pytest
import sympy
import torch

from physkan.problems import (
    DATA_MAKERS,
    PROBLEM_TYPES,
    Dataset,
    ProblemError,
    SystemBase,
    feynman_problem,
    load_problem,
    make_dataset,
    problem_from_dict,
    read_feynman_csv,
    register_data_maker,
    register_problem_type,
)

FEYNMAN_CSV = Path("/work/shared/data/feynman_dev.csv")


def regression(target: str = "exp(sin(pi*x) + y**2)", **data: object) -> dict:
    return {
        "name": "r",
        "type": "regression",
        "system": {"variables": ["x", "y"], "target": target},
        "data": {"n_train": 200, "n_test": 100, "ranges": {"x": [-1, 1], "y": [0, 2]}, **data},
    }


def file_problem(path: Path, **data: object) -> dict:
    return {
        "name": "f",
        "type": "regression",
        "system": {"variables": ["x", "y"], "outputs": ["f"]},
        "data": {"file": str(path), "n_train": 30, "n_test": 10, **data},
    }


def write_csv(path: Path, header: list[str], rows: np.ndarray) -> Path:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        out.writerows(rows.tolist())
    return path


# ---------------------------------------------------------------- sampling


def test_sampling_matches_formula_and_ranges() -> None:
    ds = make_dataset(problem_from_dict(regression()))
    assert isinstance(ds, Dataset) and ds.inputs == ["x", "y"] and ds.outputs == ["y"]
    assert ds.x_train.shape == (200, 2) and ds.y_test.shape == (100, 1)
    assert ds.x_train.dtype == torch.float64 and ds.y_train.dtype == torch.float64
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        expected = torch.exp(torch.sin(torch.pi * x[:, 0]) + x[:, 1] ** 2)
        torch.testing.assert_close(y[:, 0], expected, rtol=1e-12, atol=0)
    assert ds.x_train[:, 0].min() >= -1 and ds.x_train[:, 0].max() <= 1
    assert ds.x_train[:, 1].min() >= 0 and ds.x_train[:, 1].max() <= 2
    assert ds.meta["source"] == "sampled" and ds.meta["seed"] == 0
    assert ds.meta["ranges"] == {"x": [-1.0, 1.0], "y": [0.0, 2.0]}


def test_sampling_deterministic_by_seed() -> None:
    a = make_dataset(problem_from_dict(regression(seed=3)))
    b = make_dataset(problem_from_dict(regression(seed=3)))
    c = make_dataset(problem_from_dict(regression(seed=4)))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)
    assert not torch.equal(a.x_train[:100], a.x_test)


def test_noise_on_train_only() -> None:
    clean = make_dataset(problem_from_dict(regression()))
    noisy = make_dataset(problem_from_dict(regression(noise=0.1)))
    assert torch.equal(clean.x_train, noisy.x_train)
    assert torch.equal(clean.y_test, noisy.y_test)
    ratio = (noisy.y_train - clean.y_train).std() / clean.y_train.std()
    assert 0.07 < float(ratio) < 0.13


def test_non_finite_target_is_a_clear_error() -> None:
    with pytest.raises(ProblemError) as info:
        make_dataset(problem_from_dict(regression("sqrt(x)")))
    msg = str(info.value)
    assert "target y = sqrt(x) is not finite" in msg and "x = [-1.0, 1.0]" in msg


def test_neo_hookean_vanishes_at_identity() -> None:
    spec = load_problem("neo-hookean")
    identity = {sympy.Symbol(n): v for n, v in zip(spec.inputs(), (1, 0, 0, 1), strict=True)}
    assert [e.subs(identity) for e in spec.system.target_exprs()] == [0, 0]
    ds = make_dataset(spec)
    assert ds.outputs == ["P11", "P12"] and ds.y_train.shape == (1000, 2)
    assert torch.isfinite(ds.y_train).all()


def test_feynman_dev_csv_parses_and_samples() -> None:
    equations = read_feynman_csv(FEYNMAN_CSV)
    assert len(equations) == 60
    first = equations[0]
    assert (first.name, first.output, first.variables) == ("I.6.2", "f", ["sigma", "theta"])
    assert first.ranges["theta"] == (1.0, 3.0)
    for eq in equations:
        ds = make_dataset(feynman_problem(eq, n_train=64, n_test=16))
        assert ds.x_train.shape == (64, len(eq.variables)), eq.name
        assert torch.isfinite(ds.y_train).all() and torch.isfinite(ds.y_test).all(), eq.name
    spec = feynman_problem(equations[0], model={"grid": 7})
    assert spec.name == "feynman-I.6.2" and spec.model.grid == 7 and spec.model.width == [2, 5, 1]


def test_feynman_csv_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("name,output,formula,variables\nX.1,y,a*zz,a:1:2\n")
    with pytest.raises(ProblemError, match=r"bad\.csv:2 \(X\.1\): unknown symbol 'zz'"):
        read_feynman_csv(bad)


# ---------------------------------------------------------------- files


def test_csv_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(-1, 1, (40, 2))
    table = np.column_stack([xy, xy[:, 0] * xy[:, 1]])
    path = write_csv(tmp_path / "data.csv", ["x", "y", "f"], table)
    ds = make_dataset(problem_from_dict(file_problem(path)))
    assert (ds.n_train, ds.n_test) == (30, 10) and ds.outputs == ["f"]
    both = torch.cat([torch.cat([ds.x_train, ds.y_train], 1), torch.cat([ds.x_test, ds.y_test], 1)])
    got = both.numpy()[np.lexsort(both.numpy().T[::-1])]
    want = table[np.lexsort(table.T[::-1])]
    np.testing.assert_array_equal(got, want)
    assert ds.meta["source"] == "file" and len(ds.meta["sha256"]) == 64
    assert ds.meta["split"] == "counts"


def test_hdf5_round_trip_both_layouts(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    table = rng.normal(size=(25, 3))
    per_column, matrix = tmp_path / "cols.h5", tmp_path / "matrix.h5"
    with h5py.File(per_column, "w") as fh:
        for j, name in enumerate(["x", "y", "f"]):
            fh[name] = table[:, j]
    with h5py.File(matrix, "w") as fh:
        fh["table"] = table
        fh["table"].attrs["columns"] = ["x", "y", "f"]
    for path in (per_column, matrix):
        ds = make_dataset(problem_from_dict(file_problem(path)))
        assert ds.meta["split"] == "80/20" and (ds.n_train, ds.n_test) == (20, 5)
        rows = torch.cat([ds.x_train, ds.y_train], 1).numpy()
        index = [int(np.argmin(np.abs(table[:, 0] - r[0]))) for r in rows]
        np.testing.assert_array_equal(rows, table[index])


def test_file_column_errors_and_mapping(tmp_path: Path) -> None:
    table = np.ones((12, 3))
    path = write_csv(tmp_path / "d.csv", ["a", "y", "out"], table)
    with pytest.raises(ProblemError) as info:
        make_dataset(problem_from_dict(file_problem(path)))
    assert "missing column(s) x, f; available: a, y, out" in str(info.value)
    mapped = file_problem(path, columns={"x": "a", "f": "out"})
    assert make_dataset(problem_from_dict(mapped)).meta["columns"]["x"] == "a"
    table[4, 1] = np.nan
    write_csv(path, ["x", "y", "f"], table)
    with pytest.raises(ProblemError, match=r"column 'y' has 1 missing/NaN/inf value"):
        make_dataset(problem_from_dict(file_problem(path)))
    with pytest.raises(ProblemError, match="does not exist"):
        make_dataset(problem_from_dict(file_problem(tmp_path / "nope.csv")))


# ---------------------------------------------------------------- dispatch


def test_data_maker_dispatch() -> None:
    class ToySystem(SystemBase):
        def input_names(self) -> list[str]:
            return ["s"]

    register_problem_type("toy-test", ToySystem)
    spec = problem_from_dict(
        {"name": "t", "type": "toy-test", "system": {}, "data": {"ranges": {"s": [0, 1]}}}
    )
    try:
        with pytest.raises(ProblemError, match="no data maker for problem type 'toy-test'"):
            make_dataset(spec)
        zeros = torch.zeros(3, 1)
        register_data_maker("toy-test", lambda s: Dataset(["s"], ["v"], zeros, zeros, zeros, zeros))
        assert make_dataset(spec).n_train == 3
    finally:
        PROBLEM_TYPES.pop("toy-test", None)
        DATA_MAKERS.pop("toy-test", None)
    with pytest.raises(ValueError, match=r"x_train has shape \(3,\)"):
        Dataset(["s"], ["v"], torch.zeros(3), zeros, zeros, zeros)
