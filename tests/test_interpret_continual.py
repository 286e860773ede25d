"""Continual learning: a KAN trained region by region does not forget (splines are local)."""

from __future__ import annotations

from physkan.interpret.continual import kan_for_peaks, mlp_for_peaks, peak_tasks, run_continual


def test_kan_does_not_forget_earlier_regions() -> None:
    tasks = peak_tasks(n_peaks=5, n_per_task=100)
    res = run_continual(kan_for_peaks(grid=50), tasks, steps=30, optimizer="lbfgs")
    final = res.errors[-1]
    assert max(final) < 0.02  # every earlier region still fitted after the last phase
    assert len(res.snapshots) == 5 and res.snapshots[0].shape == (400, 1)


def test_mlp_forgets() -> None:
    tasks = peak_tasks(n_peaks=5, n_per_task=100)
    res = run_continual(mlp_for_peaks(hidden=32), tasks, steps=150, lr=5e-3)
    assert max(res.errors[-1][:-1]) > 0.1  # earlier regions are overwritten
