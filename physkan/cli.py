"""The ``physkan`` command line: discover, train, problems, plot, zoo, plugins, bench.

Start-up stays light (no torch, sympy or Lightning; ``tests/test_cli_startup.py``): the
heavy commands are :class:`~physkan.plugins.commands.LazyCommand` entries imported when
they run, ``problems`` and ``plugins`` list from files and metadata, and the plugins'
commands are attached only when ``--help`` lists them or a name is not a built-in one.

User mistakes (unknown problem, malformed file, bad option) print one ``Error:`` line on
stderr and exit with code 2, never a traceback: the root group catches the root of physkan's
exceptions, :class:`physkan.errors.PhyskanError` (see ``docs/architecture.md``).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import click

from physkan import errors
from physkan.plugins.commands import LazyCommand as _LazyCommand


class UserError(click.ClickException, errors.UserError):
    """A one-line error for the user; exit code 2 (also a :class:`physkan.errors.UserError`)."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: D102 - click API
        click.echo(f"Error: {self.format_message()}", err=True)


@contextmanager
def user_errors():
    """Turn physkan's own errors (any :class:`physkan.errors.PhyskanError`) into one
    ``Error:`` line with exit code 2; click's own exceptions pass through."""
    try:
        yield
    except click.ClickException:
        raise
    except errors.PhyskanError as exc:
        raise UserError(" ".join(str(exc).split()) or type(exc).__name__) from None


class _Group(click.Group):
    """The root group: every subcommand (plugins' included) reports physkan's errors as
    one line (see :func:`user_errors`). Plugins' commands are attached only when needed:
    when the commands are listed (``--help``) or a name is not a built-in command."""

    def invoke(self, ctx: click.Context):  # noqa: D102 - click API
        with user_errors():
            return super().invoke(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:  # noqa: D102
        command = super().get_command(ctx, cmd_name)
        if command is None:
            _attach_plugin_commands(self)
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:  # noqa: D102 - click API
        _attach_plugin_commands(self)
        return super().list_commands(ctx)


def _attach_plugin_commands(group: click.Group) -> None:
    """Attach the plugins' commands to ``group`` (once; never raises)."""
    try:
        from physkan.plugins.cli import ensure_plugin_commands
    except ImportError:  # pragma: no cover - a broken plugin system leaves the CLI usable
        return
    ensure_plugin_commands(group)


def _progress(enabled: bool) -> tuple[Callable[[str], None], Callable[[], None]]:
    """A rich status line on stderr; returns ``(report, stop)``."""
    if not enabled:
        return (lambda _msg: None), (lambda: None)
    from rich.console import Console

    console = Console(stderr=True)
    status = console.status("starting")
    status.start()
    t0 = time.perf_counter()

    def report(message: str) -> None:
        status.update(f"[bold]{message}[/] [dim]({time.perf_counter() - t0:.1f} s)[/]")

    return report, status.stop


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="physkan")
def cli() -> None:
    """physkan: discover physics with Kolmogorov-Arnold Networks."""


@cli.command()
@click.option("--problem", "-p", required=True, help="Built-in problem name or path to a problem TOML.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (no progress display).")
@click.option("--seed", type=int, default=None, help="Override the data and model seed.")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Override [train].steps.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for the trained model (model.h5) and result.json.")
@click.option("--zoo", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Local zoo to register the result in (default: $PHYSKAN_ZOO or the user data dir).")
@click.option("--no-register", is_flag=True, help="Do not register the result in the zoo.")
@click.option("--time-budget", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds the discovery may take (overrides [discover].time_budget, default 60); "
                   "it answers with the best formula found by then.")
def discover(problem: str, as_json: bool, seed: int | None, steps: int | None, out: Path | None,
             zoo: Path | None, no_register: bool, time_budget: float | None) -> None:  # fmt: skip
    """Run data -> train -> prune -> symbolic -> verify -> register and print the formula."""
    with startup_imports():  # torch, sympy, pydantic: ~1.5 s of imports
        from physkan.discover import discover as run_discover

    report, stop = _progress(not as_json)
    try:
        with user_errors():
            if out is not None:  # before training, so a bad --out costs nothing
                _make_dir(out)
            result = run_discover(problem, seed=seed, steps=steps, report=report, time_budget=time_budget)
            if out is not None:
                _write_outputs(result, out)
            if not no_register:
                report("registering in the zoo")
                result.zoo_id = _register(result, zoo)
    finally:
        stop()
    if as_json:
        click.echo(json.dumps(result.to_json(), default=str))
        return
    _print_discovery(result)


def _make_dir(out: Path) -> None:
    """Create the ``--out`` directory or fail with one line naming it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create the directory ({exc.strerror or exc})") from None


def _write_outputs(result, out: Path) -> None:
    from physkan.io import save_model

    out.mkdir(parents=True, exist_ok=True)
    if result.model is not None:
        save_model(result.model, out / "model.h5")
    (out / "result.json").write_text(json.dumps(result.to_json(), indent=2, default=str))


def _register(result, zoo: Path | None) -> str | None:
    import re

    import sympy

    from physkan.symbolic.simplify import to_latex
    from physkan.zoo import register_model

    if result.model is None:
        return None
    name = re.sub(r"[^a-z0-9._-]+", "-", f"{result.problem}-{result.type}".lower()).strip("-")[:64]
    ref = register_model(
        result.model,
        name=name,
        problem=result.problem,
        formula="; ".join(result.formula_text),
        formula_latex="; ".join(to_latex(f) for f in result.formulas),
        formula_srepr="; ".join(sympy.srepr(f) for f in result.formulas),
        metrics={k: v for k, v in result.metrics.items() if isinstance(v, (int, float))},
        tags=[result.type, "recovered" if result.recovered else "unverified"],
        training_config={"seconds": result.seconds},
        provenance={k: v for k, v in result.provenance.items() if isinstance(v, (str, int, float))},
        zoo=zoo,
    )
    return f"{ref.name}:{ref.version}"


def _print_discovery(result) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{result.problem}[/] ({result.type})")
    for name, text in zip(result.outputs, result.formula_text):
        console.print(f"  {name} = [bold cyan]{text}[/]")
    verdict = {True: "[green]yes[/]", False: "[red]no[/]", None: "[dim]no ground truth[/]"}[result.recovered]
    console.print(f"  recovered: {verdict}  [dim]{result.recovery}[/]")
    table = Table(show_header=False, box=None, padding=(0, 2))
    for key, value in result.metrics.items():
        table.add_row(key, f"{value:.3e}" if isinstance(value, float) else str(value))
    console.print(table)
    if result.numeric_edges:
        console.print(f"  [yellow]edges left as splines:[/] {result.numeric_edges}")
    if result.pareto:  # the equations table PySR users expect
        front = Table(title="Pareto front (simplest first)", title_justify="left")
        front.add_column("complexity", justify="right")
        front.add_column("test RMSE", justify="right")
        front.add_column("formula")
        chosen = set(result.formula_text)
        for cand in result.pareto:
            row = cand.as_json()
            mark = "[bold cyan]" if row["formula"] in chosen else ""
            rmse = row["test_rmse"]
            front.add_row(str(row["complexity"]), "inf" if rmse is None else f"{rmse:.3e}",
                          f"{mark}{row['formula']}{'[/]' if mark else ''}")  # fmt: skip
        console.print(front)
    console.print(f"  time: {result.seconds:.1f} s")
    if result.zoo_id:
        console.print(f"  zoo id: {result.zoo_id}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--check", is_flag=True,
              help="Load the plugins and validate every problem (a broken one shows type 'error').")
def problems(as_json: bool, check: bool) -> None:
    """List the built-in (and plugin) problems."""
    with user_errors():
        if check:
            from physkan.problems import list_problems

            items = list_problems()
        else:  # what the files declare: no torch, no sympy (physkan.plugins.listing)
            from physkan.plugins.listing import problem_summaries

            items = problem_summaries()
    if as_json:
        click.echo(json.dumps([{"name": p.name, "type": p.type, "description": p.description,
                                "source": str(p.source)} for p in items]))  # fmt: skip
        return
    _print_rows(("name", "type", "description"), [(p.name, p.type, p.description) for p in items])


def _print_rows(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A plain aligned table (rich's table module costs more start-up than the listing)."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def _attach_optional_commands() -> None:
    """Commands that live in subpackages, attached lazily (imported when they run)."""
    import importlib.util

    from physkan.plugins.cli import plugins_command

    cli.add_command(_LazyCommand("train", "physkan.train.cli:train_command",
                                 "Train the problem's network (no symbolic stage) on the Lightning engine."))  # fmt: skip
    cli.add_command(_LazyCommand("simulate", "physkan.physics.cli:simulate_command", "Integrate a problem's true L or H and write trajectories (CSV)."))  # fmt: skip
    cli.add_command(_LazyCommand("plot", "physkan.interpret.cli:plot_command",
                                 "Draw the KAN in MODEL.h5 with its activation curves and attribution scores."))  # fmt: skip
    cli.add_command(_LazyCommand("zoo", "physkan.zoo.cli:zoo_group",
                                 "Browse, share and serve discovered models (HDF5 model cards)."))  # fmt: skip
    if importlib.util.find_spec("physkan.bench") is not None:  # optional while the harness is absent
        cli.add_command(_LazyCommand("bench", "physkan.bench.cli:bench_group",
                                     "Benchmarks of the discovery pipeline."))  # fmt: skip
    cli.add_command(plugins_command, "plugins")


_attach_optional_commands()


#: True once :func:`main` runs: the command line owns the process, so it may tune Python's
#: cyclic garbage collector (:func:`startup_imports`); library use and ``CliRunner`` tests
#: (a shared, long-lived process) keep the interpreter's defaults.
_OWNS_PROCESS = False


@contextmanager
def startup_imports():
    """A command's heavy imports with the cyclic garbage collector paused, then frozen.

    Importing torch, sympy and pydantic creates ~10^6 long-lived objects (modules, classes,
    functions) and almost no garbage, yet the collector, triggered every 700 allocations,
    traverses them again and again: ~10 % of a ``physkan discover``'s wall time. So, in the
    command-line process only (:data:`_OWNS_PROCESS`, set by :func:`main`): the collector is
    off during the ``with`` block; at its end :func:`gc.freeze` moves every object alive into
    the permanent generation (never traversed again, never freed: they live as long as the
    process anyway) and the collector is switched back on with its usual thresholds, so the
    command's own work (training, a server) is collected as usual. Elsewhere, or with the
    collector already off, this does nothing.
    """
    if not (_OWNS_PROCESS and gc.isenabled()):
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def main() -> None:
    """Console-script entry point (also ``python -m physkan``).

    The process belongs to the command line: heavy imports run under
    :func:`startup_imports`'s collector policy. A finished command ends the process with
    :func:`_quick_exit`: the interpreter's finalisation, which spends 0.4-0.9 s tearing down
    torch's and sympy's modules after a ``physkan discover`` whose answer is already printed,
    is skipped. Exceptions that are not a ``SystemExit`` (a bug's traceback) leave the normal way.
    """
    global _OWNS_PROCESS
    _OWNS_PROCESS = True
    try:
        cli(prog_name="physkan")  # click's standalone mode ends with SystemExit
    except SystemExit as exc:
        code = exc.code
    else:  # pragma: no cover - standalone click always raises SystemExit
        code = 0
    _quick_exit(code)


def _quick_exit(code: int | str | None) -> None:
    """Exit with ``code`` (``SystemExit`` semantics) after the ``atexit`` handlers and a flush
    of stdout and stderr, without the interpreter's finalisation (``os._exit``). With other
    threads alive, under a profiler or tracer (``python -m cProfile -m physkan`` writes its
    profile after ``main`` returns), or with ``PHYSKAN_NO_QUICK_EXIT=1`` it exits normally."""
    if not isinstance(code, int):  # None: success; anything else: printed, exit status 1
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    normal = threading.active_count() > 1 or os.environ.get("PHYSKAN_NO_QUICK_EXIT") == "1"
    if normal or sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    atexit._run_exitfuncs()  # logging.shutdown, multiprocessing's joins, h5py's closes ...
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
