"""The plugin guide's hook reference is generated from documented hookspecs."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest

from physkan.plugins import hookspecs

ROOT = Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location("gen_plugin_docs", ROOT / "scripts" / "gen_plugin_docs.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_every_hook_is_documented_and_listed() -> None:
    specs = {n for n in dir(hookspecs) if n.startswith("physkan_")}
    assert specs == set(hookspecs.HOOK_NAMES)
    for name in specs:
        doc = inspect.getdoc(getattr(hookspecs, name))
        assert doc and "Return" in doc, f"{name} must document what it returns"


def test_docs_up_to_date() -> None:
    gen = _generator()
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert gen.updated_text(text) == text, "run python scripts/gen_plugin_docs.py"


def test_undocumented_hook_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = _generator()

    def physkan_basis_families():  # no docstring
        return []

    monkeypatch.setattr(hookspecs, "physkan_basis_families", physkan_basis_families)
    with pytest.raises(gen.UndocumentedError):
        gen.render_reference()


def _guide() -> str:
    return (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")


def test_pyproject_template_ships_problem_files() -> None:
    import tomllib

    text = _guide()
    block = text.split("`pyproject.toml`:", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    template = tomllib.loads(block)
    assert template["project"]["entry-points"]["physkan"] == {"myplugin": "physkan_myplugin.plugin"}
    package_data = template["tool"]["setuptools"]["package-data"]["physkan_myplugin"]
    assert "problems/*.toml" in package_data
    assert template["tool"]["setuptools"]["packages"] == ["physkan_myplugin"]
    assert "problems/" in text.split("## 1. Layout", 1)[1].split("`pyproject.toml`:", 1)[0]
    # the example plugin with named problems follows the template
    with (ROOT / "plugins" / "physkan-kepler" / "pyproject.toml").open("rb") as fh:
        kepler = tomllib.load(fh)
    assert "problems/*.toml" in kepler["tool"]["setuptools"]["package-data"]["physkan_kepler"]


def test_guide_documents_what_plugin_authors_need() -> None:
    import dataclasses

    from physkan.kan.basis import PointGridBasis
    from physkan.problems import SystemBase
    from physkan.symbolic.library import SymbolicFunction

    text = _guide()
    assert "PointGridBasis" in text and PointGridBasis.__name__ == "PointGridBasis"
    for field in dataclasses.fields(SymbolicFunction):
        assert f"| `{field.name}` |" in text, f"SymbolicFunction.{field.name} is undocumented"
    overridable = [n for n, v in vars(SystemBase).items()
                   if callable(v) and not n.startswith("_")] + ["truth_field"]  # fmt: skip
    for name in overridable:
        assert f"`{name}" in text, f"SystemBase.{name} is undocumented"
    assert "numpy already" in text and "**refused**" in text
    assert "### Public helpers" in text and "`__all__`" in text
