"""The time budget (physkan.budget): units, the training engine's deadline, discovery that
always answers within its budget, ``--time-budget``, the ``pareto`` JSON and noisy data."""

from __future__ import annotations

import json
import math
import pickle
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from physkan.budget import Budget, BudgetError, budget_scope, current_budget

NASTY = """
name = "nasty"
type = "regression"
[system]
variables = ["a", "b", "c", "d"]
target = "sin(3*a*b)*exp(c)/(1 + d**2*a) + cos(b - c*d)"
outputs = ["f"]
[data]
n_train = 1000
ranges = { a = [0.5, 2], b = [-1, 1], c = [-1, 1], d = [-2, 2] }
[model]
width = [4, 5, 1]
[train]
steps = 5000
lamb = 0.001
[discover]
library = ["x", "x^2", "sin", "exp"]
time_budget = 8
"""  # 5000 steps: unbounded, its search would run for many minutes


# --------------------------------------------------------------------------- Budget units
def test_unlimited_budget() -> None:
    b = Budget(None)
    assert b.remaining() == math.inf and not b.expired() and math.isinf(b.deadline)
    assert math.isinf(b.child(fraction=0.5).remaining())
    assert b.child(seconds=2.0).remaining() <= 2.0


def test_budget_expires_and_children_never_exceed_parent() -> None:
    parent = Budget(0.3)
    assert 0 < parent.remaining() <= 0.3
    assert parent.child(seconds=100.0).deadline == parent.deadline
    half = parent.child(fraction=0.5)
    assert half.deadline < parent.deadline and half.remaining() <= 0.15 + 1e-3
    assert parent.child(fraction=0.5, seconds=0.01).remaining() <= 0.01
    time.sleep(0.35)
    assert parent.expired() and half.expired() and parent.remaining() == 0.0
    assert not parent.exhausted  # expiring is not being cut short
    grandchild = half.child()
    assert grandchild.check() is True  # expired: marks the chain exhausted
    assert grandchild.exhausted and half.exhausted and parent.exhausted


def test_mark_exhausted_propagates_only_upwards() -> None:
    root = Budget(60)
    a, b = root.child(), root.child()
    a.mark_exhausted()
    assert a.exhausted and root.exhausted and not b.exhausted


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "ten"])
def test_bad_budget_is_a_clear_error(bad) -> None:
    with pytest.raises(BudgetError, match="time_budget"):
        Budget(bad)
    with pytest.raises(BudgetError, match="fraction"):
        Budget(1.0).child(fraction=1.5)


def test_budget_scope_nests_and_deadline_pickles() -> None:
    assert math.isinf(current_budget().remaining())  # none set: unlimited
    outer, inner = Budget(60), Budget(5)
    with budget_scope(outer):
        assert current_budget() is outer
        with budget_scope(inner):
            assert current_budget() is inner
        assert current_budget() is outer
    assert current_budget() is not outer
    worker = Budget.until(pickle.loads(pickle.dumps(inner.deadline)))  # as sent to a DDP worker
    assert abs(worker.deadline - inner.deadline) < 1e-9


# --------------------------------------------------------------------------- training engine
def _toy() -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    from physkan.kan.network import MultKAN

    x = torch.rand(200, 2, dtype=torch.float64)
    return MultKAN([2, 3, 1], seed=0).double(), {"x": x, "y": x[:, :1] * x[:, 1:]}


def test_fit_stops_at_the_deadline() -> None:
    from physkan.train import RegressionObjective, fit

    model, train = _toy()
    budget = Budget(1.0)
    start = time.perf_counter()
    with budget_scope(budget):
        res = fit(model, RegressionObjective(), train, steps=100_000)
    assert len(res.history) < 100_000 and budget.exhausted
    assert time.perf_counter() - start < 30  # one LBFGS step past the deadline at most
    assert math.isfinite(res.final_loss)


def test_fit_runs_no_step_past_the_deadline() -> None:
    from physkan.train import RegressionObjective, fit

    model, train = _toy()
    budget = Budget(0.01)
    time.sleep(0.02)
    with budget_scope(budget):
        res = fit(model, RegressionObjective(), train, steps=50)
    assert res.history == [] and budget.exhausted
    assert len(fit(model, RegressionObjective(), train, steps=2).history) == 2  # no scope: unlimited


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_ddp_spawn_fit_stops_at_the_deadline() -> None:
    """Both ranks stop at the same step (no hang) once the deadline passes; the parent's
    budget is marked exhausted and the model holds the trained weights."""
    from physkan.train import RegressionObjective, fit

    model, train = _toy()
    before = [p.detach().clone() for p in model.parameters()]
    budget = Budget(20.0)  # worker start-up (~5-10 s) included
    with budget_scope(budget):
        res = fit(model, RegressionObjective(), train, steps=100_000, accelerator="cpu", devices=2,
                  strategy="ddp_spawn")  # fmt: skip
    assert budget.exhausted and 0 < len(res.history) < 100_000
    assert res.metrics["physkan/param_divergence"] == 0.0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


# --------------------------------------------------------------------------- discovery
def test_unrecoverable_problem_answers_within_budget(tmp_path: Path) -> None:
    import physkan

    path = tmp_path / "nasty.toml"
    path.write_text(NASTY)
    start = time.perf_counter()
    result = physkan.discover(str(path))
    elapsed = time.perf_counter() - start
    assert elapsed <= 8 * 1.1, elapsed
    assert result.metrics["budget_exhausted"] == 1, (elapsed, result.symbolic_report)
    assert result.recovered is False
    assert result.formulas and result.formula_text[0]
    payload = result.to_json()
    assert payload["metrics"]["budget_exhausted"] == 1 and isinstance(payload["pareto"], list)


def test_time_budget_option_overrides_the_file(tmp_path: Path) -> None:
    from physkan.cli import cli

    path = tmp_path / "nasty.toml"
    path.write_text(NASTY.replace("time_budget = 8", "time_budget = 3000"))
    start = time.perf_counter()
    res = CliRunner().invoke(cli, ["discover", "--problem", str(path), "--json", "--no-register",
                                   "--time-budget", "5"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert time.perf_counter() - start <= 5 * 1.1 + 1.0  # + the CLI's JSON and problem loading
    payload = json.loads(res.stdout)
    assert payload["metrics"]["budget_exhausted"] == 1 and payload["formula"]


@pytest.mark.parametrize("value", ["0", "-3", "soon"])
def test_bad_time_budget_option_is_one_error_line(value: str) -> None:
    from physkan.cli import cli

    res = CliRunner().invoke(cli, ["discover", "--problem", "tutorial", "--time-budget", value])
    assert res.exit_code == 2
    assert "--time-budget" in res.output


def test_bad_time_budget_in_file_names_the_field(tmp_path: Path) -> None:
    from physkan.cli import cli

    path = tmp_path / "bad.toml"
    path.write_text(NASTY.replace("time_budget = 8", "time_budget = -1"))
    res = CliRunner().invoke(cli, ["discover", "--problem", str(path), "--no-register"])
    assert res.exit_code == 2
    assert "time_budget" in res.output and "Traceback" not in res.output


@pytest.mark.recovery
def test_tutorial_json_has_pareto_front_with_the_chosen_formula(tmp_path: Path) -> None:
    from physkan.cli import cli

    res = CliRunner().invoke(cli, ["discover", "--problem", "tutorial", "--json", "--no-register",
                                   "--time-budget", "120"])  # fmt: skip
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload.keys() >= {"problem", "type", "formula", "formulas", "latex", "outputs", "variables",
                              "recovered", "recovery", "metrics", "seconds", "numeric_edges", "zoo_id",
                              "pareto"}  # fmt: skip
    assert payload["recovered"] is True and payload["metrics"]["budget_exhausted"] == 0
    front = payload["pareto"]
    assert front and all(row.keys() == {"formula", "complexity", "test_rmse"} for row in front)
    assert [r["complexity"] for r in front] == sorted(r["complexity"] for r in front)
    assert payload["formula"] in [r["formula"] for r in front]


def test_cli_prints_the_front_as_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    import sympy

    from physkan.cli import _print_discovery
    from physkan.strategies.base import Discovery
    from physkan.symbolic.pareto import ParetoFront

    x, y = sympy.symbols("x y")
    front = ParetoFront()
    front.add(x, 0.5)
    front.add(x * y + 1, 1e-12)
    found = Discovery("toy", "regression", ["x", "y"], ["f"], [x * y + 1], True, "ok",
                      {"test_rmse": 1e-12, "budget_exhausted": 0}, 1.0, pareto=front.front())  # fmt: skip
    _print_discovery(found)
    out = capsys.readouterr().out
    assert "Pareto front" in out and "complexity" in out
    assert out.index("x*y + 1") < out.index("Pareto front") < out.rindex("x*y + 1")


@pytest.mark.recovery
def test_tutorial_with_noise_still_recovers() -> None:
    import physkan
    from physkan.problems import load_problem

    spec = load_problem("tutorial").updated({"data.noise": 1e-3})
    result = physkan.discover(spec, time_budget=180)
    assert result.recovered is True, (result.formula_text, result.recovery)
