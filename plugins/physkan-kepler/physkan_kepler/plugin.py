"""physkan hook implementations of physkan-kepler (entry point ``kepler``)."""

from __future__ import annotations

from pathlib import Path

from physkan.plugins import ProblemRecord, ProblemTypeRecord, hookimpl

PROBLEM_DIR = Path(__file__).resolve().parent / "problems"


def _objective(**options: object) -> object:
    """Conservation objective on batches ``{"z": states, "f": dz/dt}``."""
    from physkan.train.objectives import ConservationObjective

    return ConservationObjective(**options)


def _strategy(spec, data, report):  # type: ignore[no-untyped-def]
    from .strategy import discover_kepler

    return discover_kepler(spec, data, report)


@hookimpl
def physkan_problem_types() -> list[ProblemTypeRecord]:
    """The ``kepler`` problem type."""
    from .system import KeplerSystem, make_kepler_dataset

    return [
        ProblemTypeRecord(
            name="kepler",
            system_model=KeplerSystem,
            data_maker=make_kepler_dataset,
            objective=_objective,
            dataset_keys=("z", "f"),
            strategy=_strategy,
            description="central-force orbits; energy, angular momentum, Laplace-Runge-Lenz",
        )
    ]


@hookimpl
def physkan_problems() -> list[ProblemRecord]:
    """The named problem ``kepler-orbit``."""
    return [ProblemRecord("kepler-orbit", PROBLEM_DIR / "kepler-orbit.toml")]
