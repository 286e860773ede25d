"""Shared helpers of the zoo CLI tests: run ``physkan zoo …`` in-process and check errors."""

from __future__ import annotations

from click.testing import CliRunner, Result

from physkan.zoo.cli import zoo_group


def run(*args: str) -> Result:
    """``physkan zoo ARGS`` through click's runner (stdout and stderr kept apart)."""
    return CliRunner().invoke(zoo_group, list(args))


def assert_user_error(result: Result, text: str = "") -> None:
    """Exit 2 and exactly one ``Error:`` line on stderr containing ``text``; no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and text in lines[0], lines
