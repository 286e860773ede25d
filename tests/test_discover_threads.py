"""The thread matrix of tests/conftest.py: a ``recovery`` test runs at every thread count,
and subprocesses it starts use the same count."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch


@pytest.mark.recovery
def test_recovery_tests_run_at_each_thread_count(request: pytest.FixtureRequest, torch_threads: int) -> None:
    assert request.node.callspec.id == f"threads{torch_threads}"
    assert torch.get_num_threads() == torch_threads
    assert os.environ["OMP_NUM_THREADS"] == str(torch_threads)
    child = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                           capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    assert int(child.stdout) == torch_threads


def test_thread_matrix_covers_one_and_two_threads() -> None:
    """Collection gives each ``recovery`` test one id per thread count; others stay single."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          os.path.join(here, "test_discover_threads.py")],
                         capture_output=True, text=True, timeout=300, cwd=os.path.dirname(here))  # fmt: skip
    ids = {line.rsplit("::", 1)[-1] for line in out.stdout.splitlines() if "::" in line}
    assert ids == {"test_recovery_tests_run_at_each_thread_count[threads1]",
                   "test_recovery_tests_run_at_each_thread_count[threads2]",
                   "test_thread_matrix_covers_one_and_two_threads"}, out.stdout + out.stderr  # fmt: skip
    assert torch.get_num_threads() == 1
