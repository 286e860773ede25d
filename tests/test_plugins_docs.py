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
