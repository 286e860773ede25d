"""``physkan`` (console script / ``python -m physkan``) exits without the interpreter's
finalisation, but with the right status, flushed output and the atexit handlers run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from physkan import cli


class _Exited(Exception):
    pass


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> list:
    calls: list = []

    def fake_exit(code: int) -> None:
        calls.append(("exit", code))
        raise _Exited

    monkeypatch.setattr(cli.os, "_exit", fake_exit)
    monkeypatch.setattr(cli.atexit, "_run_exitfuncs", lambda: calls.append(("atexit",)))
    return calls


@pytest.mark.parametrize("code, status", [(None, 0), (0, 0), (2, 2), ("boom", 1)])
def test_quick_exit_status_and_order(exits: list, code: object, status: int, capsys: pytest.CaptureFixture,
                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    # a thread an earlier test left behind (pytest runs them all in one process) would send
    # _quick_exit down its normal-exit path, which test_quick_exit_joins_threads_normally covers
    monkeypatch.setattr(cli.threading, "active_count", lambda: 1)
    with pytest.raises(_Exited):
        cli._quick_exit(code)
    assert exits == [("atexit",), ("exit", status)]
    assert ("boom" in capsys.readouterr().err) == (code == "boom")


def test_quick_exit_joins_threads_normally(exits: list) -> None:
    import threading

    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        with pytest.raises(SystemExit) as info:
            cli._quick_exit(3)
    finally:
        stop.set()
        worker.join()
    assert info.value.code == 3 and exits == []


def test_module_entry_point_statuses_and_flushed_output() -> None:
    ok = subprocess.run([sys.executable, "-m", "physkan", "problems"], capture_output=True, text=True)
    assert ok.returncode == 0 and "tutorial" in ok.stdout and ok.stdout.endswith("\n")
    bad = subprocess.run([sys.executable, "-m", "physkan", "discover", "--problem", "no-such-problem"],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("Error: unknown problem")
    assert "Traceback" not in bad.stderr


def test_profilers_and_the_opt_out_get_a_normal_exit(exits: list, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """``python -m cProfile -m physkan`` must still write its profile (it does so after main
    returns), and ``PHYSKAN_NO_QUICK_EXIT=1`` turns the quick exit off."""
    monkeypatch.setenv("PHYSKAN_NO_QUICK_EXIT", "1")
    with pytest.raises(SystemExit) as info:
        cli._quick_exit(4)
    assert info.value.code == 4 and exits == []
    out = tmp_path / "p.prof"
    done = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "physkan", "problems"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0 and "tutorial" in done.stdout
    assert out.stat().st_size > 0
