"""The Feynman benchmark harness: rows, failures, JSON and the ``bench feynman`` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from physkan.bench.cli import bench_group
from physkan.bench.feynman import run_feynman_bench

CSV = (
    "name,output,formula,variables\n"
    "I.12.1,F,mu*Nn,mu:1:5 Nn:1:5\n"
    "II.8.31,E_den,epsilon*Ef**2/2,epsilon:1:5 Ef:1:5\n"
)


def _write(tmp_path: Path, text: str = CSV) -> Path:
    path = tmp_path / "feynman.csv"
    path.write_text(text)
    return path


@pytest.mark.recovery
def test_bench_runs_rows_and_reports_rate(tmp_path: Path) -> None:
    summary = run_feynman_bench(_write(tmp_path), steps=20, n_train=200, n_test=200)
    assert [r.name for r in summary.rows] == ["I.12.1", "II.8.31"]
    for row in summary.rows:
        assert row.error is None
        assert row.seconds > 0
        assert row.recovered, row.formula
        assert row.test_rmse < 1e-6
    assert summary.rate == 1.0


@pytest.mark.recovery
def test_bench_failing_row_is_reported_and_run_continues(tmp_path: Path) -> None:
    bad = "bad.1,f,sqrt(x) + y,x:-2:-1 y:1:2\n"  # sqrt of negatives: no usable data
    summary = run_feynman_bench(_write(tmp_path, CSV.replace("I.12.1,", bad + "I.12.1,", 1)),
                                steps=20, n_train=200, n_test=200)  # fmt: skip
    first, *rest = summary.rows
    assert first.name == "bad.1" and not first.recovered and first.error
    assert [r.name for r in rest] == ["I.12.1", "II.8.31"]
    assert all(r.error is None and r.recovered for r in rest)
    assert abs(summary.rate - 2 / 3) < 1e-12


@pytest.mark.recovery
def test_bench_cli_limit_and_json(tmp_path: Path) -> None:
    out = tmp_path / "res.json"
    result = CliRunner().invoke(bench_group, ["feynman", "--csv", str(_write(tmp_path)), "--limit", "1",
                                              "--steps", "20", "--n-train", "200", "--json", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "recovery rate: 1/1" in result.output
    payload = json.loads(out.read_text())
    assert payload["n"] == 1 and payload["rows"][0]["name"] == "I.12.1"


def test_bench_cli_bad_csv(tmp_path: Path) -> None:
    result = CliRunner().invoke(bench_group, ["feynman", "--csv", str(_write(tmp_path, "name,formula\nx,y\n"))])
    assert result.exit_code != 0
    assert "missing column" in result.output
