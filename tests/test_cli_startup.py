"""The command line starts fast: ``--help``, ``problems`` and ``plugins`` never import torch.

Timing is measured as a ratio to ``python -c pass`` in fresh processes (median of 5,
interleaved: ``scripts/bench_cli.py``), with a bound that a loaded 2-core box meets while a
torch import alone (1.5-3 s against 20-40 ms for the bare interpreter) breaks it by far.
The module check is direct: after the commands ran, ``sys.modules`` has no torch.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from physkan.plugins import LazyCommand

ROOT = Path(__file__).resolve().parent.parent
#: modules the listing commands must not import (each costs 0.2-3 s of start-up).
HEAVY = ("torch", "sympy", "pytorch_lightning", "lightning", "scipy", "pydantic", "h5py", "rich.table")
#: start-up bound, as a multiple of ``python -c pass`` (light: ~3-5x; with torch: > 40x).
MAX_RATIO = 15.0

_PROBE = """
import json, sys
from click.testing import CliRunner
import physkan.cli
out = {}
for args in (["--help"], ["problems"], ["problems", "--json"], ["plugins"], ["plugins", "--json"]):
    result = CliRunner().invoke(physkan.cli.cli, args)
    out[" ".join(args)] = [result.exit_code, result.output]
out["heavy"] = sorted(m for m in HEAVY if m in sys.modules)
print(json.dumps(out))
"""


def _bench():
    spec = importlib.util.spec_from_file_location("bench_cli", ROOT / "scripts" / "bench_cli.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_listing_commands_import_no_heavy_module() -> None:
    code = f"HEAVY = {HEAVY!r}\n{_PROBE}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out.pop("heavy") == []
    assert all(code == 0 for code, _ in out.values()), out
    assert "discover" in out["--help"][1] and "zoo" in out["--help"][1]
    problems = {row["name"]: row for row in json.loads(out["problems --json"][1])}
    assert problems["pendulum"]["type"] == "lagrangian" and problems["pendulum"]["source"] == "builtin"
    assert {"name": "physkan", "status": "installed"}.items() <= json.loads(out["plugins --json"][1])[0].items()


def test_start_up_time_is_a_small_multiple_of_bare_python() -> None:
    results = _bench().measure(["import physkan.cli", "physkan --help"], repeats=5)
    ratios = {label: round(row["ratio_to_python"], 1) for label, row in results.items()}
    assert ratios["import physkan.cli"] <= MAX_RATIO, ratios
    assert ratios["physkan --help"] <= MAX_RATIO, ratios


def test_light_problem_listing_matches_the_validated_one() -> None:
    from physkan.cli import cli

    runner = CliRunner()
    light, full = (runner.invoke(cli, ["problems", "--json", *extra]) for extra in ([], ["--check"]))
    assert light.exit_code == 0 and full.exit_code == 0, light.output + full.output
    assert json.loads(light.output) == json.loads(full.output)


def test_lazy_command_is_imported_only_when_it_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lazy_cmd_demo.py").write_text(
        "import click\n\n@click.command()\n@click.argument('who')\ndef hello(who):\n"
        "    click.echo(f'hello {who}')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    @click.group()
    def host() -> None:
        """A host group."""

    host.add_command(LazyCommand("hello", "lazy_cmd_demo:hello", "Say hello (lazily)."))
    host.add_command(LazyCommand("broken", "lazy_cmd_demo:missing", "Not there."))
    runner = CliRunner()
    listing = runner.invoke(host, ["--help"])
    assert "Say hello (lazily)." in listing.output and "lazy_cmd_demo" not in sys.modules
    assert runner.invoke(host, ["hello", "--help"]).output.startswith("Usage: host hello [OPTIONS] WHO")
    assert runner.invoke(host, ["hello", "world"]).output == "hello world\n"
    broken = runner.invoke(host, ["broken"])
    assert broken.exit_code == 1 and "cannot load lazy_cmd_demo:missing" in broken.output
    with pytest.raises(ValueError, match="module:attribute"):
        LazyCommand("bad", "no_colon", "x")
