"""One exception root: every exception class physkan defines derives from PhyskanError.

User-fixable errors (bad input, unknown names, damaged files, refused uploads) derive from
:class:`physkan.errors.UserError`, and every one keeps its historic built-in base, so
``except ValueError`` code keeps working. The command line turns any of them into one
``Error:`` line with exit status 2.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from click.testing import CliRunner

import physkan
from physkan.errors import PhyskanError, UserError


def _physkan_exception_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(physkan.__path__, prefix="physkan."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and not issubclass(value, Warning)
                and value.__module__.startswith("physkan")
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[k] for k in sorted(found)]


def test_every_physkan_exception_derives_from_the_root() -> None:
    classes = _physkan_exception_classes()
    assert len(classes) >= 15
    outside = [f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, PhyskanError)]
    assert not outside, f"not a PhyskanError: {outside}"


@pytest.mark.parametrize(
    ("module", "name", "builtin"),
    [
        ("physkan.problems.errors", "ProblemError", ValueError),
        ("physkan.kan.basis", "UnknownBasisError", ValueError),
        ("physkan.symbolic.library", "UnknownSymbolicError", ValueError),
        ("physkan.physics.lagrangian", "SingularHessianError", ValueError),
        ("physkan.io", "ModelFileError", ValueError),
        ("physkan.zoo.card", "ZooError", Exception),
        ("physkan.zoo.hdf5_guard", "DeclaredSizeError", Exception),
        ("physkan.registry", "UnknownNameError", LookupError),
    ],
)
def test_user_errors_keep_their_builtin_base(module: str, name: str, builtin: type) -> None:
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, UserError) and issubclass(cls, builtin)


def test_cli_turns_any_physkan_error_into_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """The root group catches the root: a PhyskanError from any command is one line, exit 2."""
    import sys

    from physkan.cli import cli

    def boom(*_args, **_kwargs):
        raise PhyskanError("something\nphyskan-specific went wrong")

    monkeypatch.setattr(sys.modules["physkan.discover"], "discover", boom)
    result = CliRunner().invoke(cli, ["discover", "--problem", "tutorial", "--json", "--no-register"])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == "Error: something physkan-specific went wrong"


def test_bench_cli_does_not_import_the_main_cli() -> None:
    import ast
    from pathlib import Path

    source = Path(physkan.__file__).with_name("bench").joinpath("cli.py").read_text()
    imported = {
        node.module
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "physkan.cli" not in imported
