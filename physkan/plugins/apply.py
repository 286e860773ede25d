"""Register collected plugin contributions into physkan's registries.

Called once per manager by :meth:`PhyskanPluginManager.apply`. Every step is guarded: a
contribution that physkan refuses (bad name, invalid problem file ...) becomes a warning
on the plugin that made it, and the remaining contributions still register.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .hookspecs import ProblemRecord, ProblemTypeRecord, SymbolicLibraryRecord

if TYPE_CHECKING:  # pragma: no cover
    from .manager import PhyskanPluginManager

__all__ = ["apply_all"]

BUILTIN = "physkan"


def apply_all(manager: PhyskanPluginManager) -> None:
    """Register basis families, symbolic functions, problem types and problems."""
    for step in (_basis, _symbolic, _problem_types, _problems):
        step(manager)


def _guard(manager: PhyskanPluginManager, kind: str, name: str, fn: Any) -> None:
    plugin = manager.owner(kind, name) or BUILTIN
    if plugin == BUILTIN:
        return
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - reported on the plugin, never raised
        manager._fail(plugin, f"{kind} {name!r} not registered: {type(exc).__name__}: {exc}")


def _basis(manager: PhyskanPluginManager) -> None:
    from physkan.kan import basis

    for family in manager.basis_families():
        if family.name not in basis._FAMILIES:
            _guard(manager, "basis_families", family.name,
                   lambda f=family: basis.register_basis_family(f))  # fmt: skip


def _symbolic(manager: PhyskanPluginManager) -> None:
    from physkan.problems import expressions
    from physkan.symbolic import library, simplify

    from .numeric import NUMPY_FUNCTIONS

    records: dict[int, SymbolicLibraryRecord] = {}
    for name, (fn, record) in manager.symbolic_records().items():
        if name not in library._REGISTRY:
            _guard(manager, "symbolic", name, lambda f=fn: library.register_symbolic(f))
        if record is not None and manager.owner("symbolic", name) != BUILTIN:
            records[id(record)] = record
    for record in records.values():
        for key, value in record.parse_names.items():
            expressions.FUNCTIONS.setdefault(key, value)
        for key, value in record.numpy_functions.items():
            NUMPY_FUNCTIONS.setdefault(key, value)
        for key, value in record.torch_functions.items():
            simplify._TORCH_NAMESPACE.setdefault(key, value)


def _problem_types(manager: PhyskanPluginManager) -> None:
    from physkan.problems import datasets, spec

    for name, record in manager.problem_types().items():
        _guard(manager, "problem_types", name, lambda r=record: _one_type(r, spec, datasets))


def _one_type(record: ProblemTypeRecord, spec: Any, datasets: Any) -> None:
    spec.register_problem_type(record.name, record.system_model)
    if record.data_maker is not None:
        datasets.register_data_maker(record.name, record.data_maker)
    if record.objective is not None:
        from physkan.train.objectives import register_objective

        register_objective(record.name, record.objective, record.dataset_keys)


def _problems(manager: PhyskanPluginManager) -> None:
    from physkan.problems import loader

    for name, record in manager.problems().items():
        _guard(manager, "problems", name, lambda r=record: _one_problem(r, loader))


def _one_problem(record: ProblemRecord, loader: Any) -> None:
    source = record.source
    if isinstance(source, Mapping):
        source = loader.problem_from_dict(source, source=f"plugin:{record.name}")
    elif isinstance(source, (str, Path)) and not Path(source).is_file():
        raise FileNotFoundError(f"no problem file {source}")
    loader.register_problem(record.name, source)
