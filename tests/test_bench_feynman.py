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
    times = sorted(r.seconds for r in summary.rows)
    out = summary.to_json()
    assert (out["median_seconds"], out["p90_seconds"], out["max_seconds"]) == tuple(
        round(t, 3) for t in (times[0], times[1], times[1]))


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


NASTY_ROW = "nasty.1,f,sin(3*a*b)*exp(c)/(1 + d**2*a) + cos(b - c*d),a:0.5:2 b:-1:1 c:-1:1 d:-2:2\n"


def test_bench_time_budget_bounds_every_row(tmp_path: Path) -> None:
    """An unrecoverable row answers within its budget (+10 %), cut short and not flagged."""
    summary = run_feynman_bench(_write(tmp_path, CSV.splitlines(keepends=True)[0] + NASTY_ROW),
                                n_train=300, n_test=300, steps=5000, time_budget=6.0)  # fmt: skip
    (row,) = summary.rows
    assert row.error is None and row.formula
    assert row.seconds <= 6.0 * 1.1, row.seconds
    assert row.budget_exhausted and not row.over_budget and not row.recovered
    assert summary.to_json()["over_budget"] == 0
    assert summary.to_json()["max_seconds"] == round(row.seconds, 3)


@pytest.mark.recovery
@pytest.mark.parametrize("flag", ["--time-budget", "--timeout"])
def test_bench_cli_time_budget_noise_and_alias(tmp_path: Path, flag: str) -> None:
    out = tmp_path / "res.json"
    result = CliRunner().invoke(bench_group, ["feynman", "--csv", str(_write(tmp_path)), "--limit", "1",
                                              "--steps", "20", "--n-train", "300", "--noise", "1e-4",
                                              flag, "30", "--json", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    (row,) = json.loads(out.read_text())["rows"]
    assert row["recovered"] is True, row
    assert row["seconds"] <= 33 and row["budget_exhausted"] is False and row["over_budget"] is False


def test_bench_cli_bad_time_budget(tmp_path: Path) -> None:
    result = CliRunner().invoke(bench_group, ["feynman", "--csv", str(_write(tmp_path)), "--time-budget", "0"])
    assert result.exit_code == 2 and "--time-budget" in result.output
