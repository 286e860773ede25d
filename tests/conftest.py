"""Shared pytest configuration: slow-test gating, deterministic torch, and the thread matrix.

Tests run single-threaded by default. Tests marked ``recovery`` (they assert that a formula
is recovered, or another discovery result) run once per entry of :data:`THREAD_COUNTS`, with
ids ending in ``[threads1]`` / ``[threads2]``: a discovery must not depend on the last bits of
a BLAS reduction order. Subprocesses started by such a test inherit the count through
``OMP_NUM_THREADS``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

#: torch intra-op thread counts every ``recovery`` test runs under.
THREAD_COUNTS = (1, 2)

# The tests train tiny networks: one thread is faster than two fighting over 2 cores, and
# subprocesses (CLI tests, DDP workers) inherit the setting.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


class ThreadMatrix:
    """Session-wide plugin (registered in :func:`pytest_configure`, so that the example
    plugins' tests under ``plugins/`` get it too): parametrises every ``recovery`` test over
    :data:`THREAD_COUNTS` through the ``torch_threads`` fixture."""

    @staticmethod
    @pytest.hookimpl(trylast=True)  # after the test's own parametrize: ids end in [threadsN]
    def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
        if metafunc.definition.get_closest_marker("recovery") is None:
            return
        if "torch_threads" not in metafunc.fixturenames:
            metafunc.fixturenames.append("torch_threads")
        metafunc.parametrize("torch_threads", THREAD_COUNTS, indirect=True,
                             ids=[f"threads{n}" for n in THREAD_COUNTS])  # fmt: skip

    @pytest.fixture
    def torch_threads(self, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
        """The test's torch thread count (``OMP_NUM_THREADS`` too, for subprocesses)."""
        count = int(getattr(request, "param", 1))
        before = torch.get_num_threads()
        monkeypatch.setenv("OMP_NUM_THREADS", str(count))
        torch.set_num_threads(count)
        try:
            yield count
        finally:
            torch.set_num_threads(before)


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("physkan-thread-matrix"):
        config.pluginmanager.register(ThreadMatrix(), "physkan-thread-matrix")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow") or os.environ.get("PHYSKAN_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow or PHYSKAN_RUN_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _torch_defaults():
    """Every test starts from the same RNG state and float32 default dtype."""
    torch.manual_seed(0)
    dtype = torch.get_default_dtype()
    yield
    torch.set_default_dtype(dtype)
