"""The command line's collector policy (:func:`physkan.cli.startup_imports`): paused during a
command's heavy imports, then everything frozen and the collector back on; only in the
process :func:`physkan.cli.main` owns."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from physkan import cli


@pytest.fixture
def collector() -> Iterator[None]:
    """Restore the collector (on, nothing frozen) whatever the test did."""
    was_enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if was_enabled:
        gc.enable()
    else:  # pragma: no cover - pytest runs with the collector on
        gc.disable()


def test_paused_then_frozen_and_back_on_when_the_cli_owns_the_process(
    collector: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "_OWNS_PROCESS", True)
    gc.enable()
    gc.unfreeze()
    with cli.startup_imports():
        assert not gc.isenabled()
        created = [[i] for i in range(100)]  # objects made by the "imports"
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(created)


def test_back_on_after_an_import_error(collector: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_OWNS_PROCESS", True)
    gc.enable()
    with pytest.raises(ImportError), cli.startup_imports():
        raise ImportError("no such module")
    assert gc.isenabled()


@pytest.mark.parametrize("owns, enabled", [(False, True), (True, False)])
def test_no_change_in_library_use_or_with_the_collector_off(
    collector: None, monkeypatch: pytest.MonkeyPatch, owns: bool, enabled: bool
) -> None:
    monkeypatch.setattr(cli, "_OWNS_PROCESS", owns)
    gc.unfreeze()
    gc.enable() if enabled else gc.disable()
    with cli.startup_imports():
        assert gc.isenabled() == enabled
    assert gc.isenabled() == enabled and gc.get_freeze_count() == 0


def test_discover_imports_under_the_policy(collector: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """``physkan discover`` imports the pipeline inside :func:`~physkan.cli.startup_imports`
    (an unknown problem fails after the imports, before any work)."""
    from click.testing import CliRunner

    monkeypatch.setattr(cli, "_OWNS_PROCESS", True)
    gc.enable()
    gc.unfreeze()
    result = CliRunner().invoke(cli.cli, ["discover", "--problem", "no-such-problem", "--json"])
    assert result.exit_code == 2 and "unknown problem" in result.output
    assert gc.isenabled() and gc.get_freeze_count() > 0
