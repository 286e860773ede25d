"""``physkan bench``: benchmark commands (``physkan bench feynman``).

Attach with ``cli.add_command(bench_group)`` (``from physkan.bench.cli import bench_group``).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from physkan.errors import UserError

__all__ = ["BenchError", "bench_group"]


class BenchError(click.ClickException, UserError):
    """A user-facing bench error: one ``Error:`` line on stderr, exit code 2."""

    exit_code = 2


@click.group("bench")
def bench_group() -> None:
    """Benchmarks of the discovery pipeline."""


def _table(summary):
    from rich.table import Table

    table = Table(title=f"AI Feynman: {summary.n_recovered}/{summary.n} recovered ({summary.rate:.0%})")
    for col, kw in (("equation", {}), ("recovered", {}), ("test RMSE", {"justify": "right"}),
                    ("seconds", {"justify": "right"}), ("formula / reason", {"overflow": "fold"})):  # fmt: skip
        table.add_column(col, **kw)
    for r in summary.rows:
        mark = "[green]yes[/]" if r.recovered else ("[red]error[/]" if r.error else "[yellow]no[/]")
        secs = f"{r.seconds:.1f}" + (" [red]over budget[/]" if r.over_budget else " (budget)" if r.budget_exhausted else "")
        table.add_row(r.name, mark, f"{r.test_rmse:.2e}", secs, r.error or r.formula)
    return table


@bench_group.command("feynman")
@click.option("--csv", "csv_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Feynman-benchmark CSV (name, output, formula, variables).")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N equations.")
@click.option("--name", "names", multiple=True, help="Only these equations (repeatable).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the results as JSON to this file.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Data and model seed.")
@click.option("--steps", type=click.IntRange(min=0), default=None, help="Override [train].steps.")
@click.option("--time-budget", "--timeout", "time_budget", type=click.FloatRange(min=0, min_open=True),
              default=None, help="Seconds per equation (each answers within it; --timeout is an alias).")  # fmt: skip
@click.option("--n-train", type=click.IntRange(min=10), default=1000, show_default=True,
              help="Training samples per equation (as many test samples).")  # fmt: skip
@click.option("--noise", type=click.FloatRange(min=0, max=100), default=0.0, show_default=True,
              help="Relative Gaussian noise on the training targets ([data].noise).")  # fmt: skip
def feynman_command(csv_path: Path, limit: int | None, names: tuple[str, ...], json_out: Path | None,
                    seed: int, steps: int | None, time_budget: float | None, n_train: int,
                    noise: float) -> None:  # fmt: skip
    """Discover every equation of a Feynman CSV and report the exact-recovery rate."""
    from rich.console import Console

    from physkan.bench.feynman import run_feynman_bench
    from physkan.problems.errors import ProblemError

    console = Console(stderr=True)

    def progress(row) -> None:
        status = "recovered" if row.recovered else ("error" if row.error else "not recovered")
        console.print(f"{row.name}: {status} ({row.seconds:.1f} s) {row.error or row.formula}",
                      markup=False, highlight=False)  # fmt: skip

    try:
        summary = run_feynman_bench(csv_path, limit=limit, names=names or None, seed=seed, steps=steps,
                                    n_train=n_train, n_test=n_train, time_budget=time_budget,
                                    noise=noise, on_row=progress)  # fmt: skip
    except ProblemError as exc:  # one "Error:" line, exit code 2, like the other commands
        raise BenchError(str(exc)) from None
    Console().print(_table(summary))
    click.echo(f"recovery rate: {summary.n_recovered}/{summary.n} = {summary.rate:.1%} "
               f"in {summary.seconds:.1f} s; per row median {summary.quantile_seconds(0.5):.1f} s, "
               f"p90 {summary.quantile_seconds(0.9):.1f} s, max {summary.quantile_seconds(1.0):.1f} s" + (f"; {summary.n_over_budget} over budget" if summary.n_over_budget else ""))  # fmt: skip
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(summary.to_json(), indent=2) + "\n")
