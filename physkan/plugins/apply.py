"""Register one plugin's accepted contributions into physkan's registries, all or none.

:meth:`PhyskanPluginManager.apply` calls :func:`apply_plugin` per plugin with a fresh
:class:`Transaction`. Every registry write is logged there first, so when a later
registration of the same plugin raises, :meth:`Transaction.rollback` puts every registry
back as it was and the plugin leaves nothing behind.

Not failures but *refusals* (listed by ``physkan plugins`` with the reason, the rest of the
plugin still registers):

* a ``numpy_functions`` key that names something numpy already has (``sinc``, ``sin`` ...):
  sympy's numpy printer emits those names for sympy's own functions (``sinc(x)`` prints as
  ``sinc(x/pi)``, numpy's normalised sinc), so a plugin entry would silently change what
  the formula evaluates to;
* a ``torch_functions`` key that is built into the torch evaluator;
* a ``parse_names`` key that physkan (or an earlier plugin) already maps to something else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .hookspecs import ProblemRecord, ProblemTypeRecord, SymbolicLibraryRecord

if TYPE_CHECKING:  # pragma: no cover
    from .manager import PhyskanPluginManager

__all__ = ["Transaction", "apply_plugin", "numpy_shadows"]

_MISSING = object()


class Transaction:
    """Undo log of registry writes: ``track`` before a write, ``rollback`` to undo all."""

    def __init__(self) -> None:
        self._log: list[tuple[MutableMapping[str, Any], str, Any]] = []

    def track(self, registry: MutableMapping[str, Any], key: str) -> None:
        """Remember ``registry[key]`` (or its absence) before it is written."""
        self._log.append((registry, key, registry.get(key, _MISSING)))

    def write(self, registry: MutableMapping[str, Any], key: str, value: Any) -> None:
        """``registry[key] = value``, undoably."""
        self.track(registry, key)
        registry[key] = value

    def call(self, registries: list[tuple[MutableMapping[str, Any], str]],
             register: Callable[[], Any]) -> None:  # fmt: skip
        """Run ``register()``, a public ``register_*`` function writing the given entries."""
        for registry, key in registries:
            self.track(registry, key)
        register()

    def rollback(self) -> None:
        """Restore every tracked entry, newest first."""
        for registry, key, old in reversed(self._log):
            if old is _MISSING:
                registry.pop(key, None)
            else:
                registry[key] = old
        self._log.clear()


def apply_plugin(manager: PhyskanPluginManager, plugin: str, items: Mapping[str, Mapping[str, Any]],
                 txn: Transaction) -> None:  # fmt: skip
    """Register ``items`` (kind -> name -> contribution) of ``plugin``; raises on failure.

    The caller rolls ``txn`` back when this raises.
    """
    for name, family in items.get("basis_families", {}).items():
        _basis(name, family, txn)
    records: dict[int, SymbolicLibraryRecord] = {}
    for name, (fn, record) in items.get("symbolic", {}).items():
        _symbolic(name, fn, txn)
        if record is not None:
            records[id(record)] = record
    for record in records.values():
        _record_extras(manager, plugin, record, txn)
    for record in items.get("problem_types", {}).values():
        _problem_type(record, txn)
    for record in items.get("problems", {}).values():
        _problem(record, txn)


def _basis(name: str, family: Any, txn: Transaction) -> None:
    from physkan.kan import basis

    if name in basis._FAMILIES:  # pulled in by the basis registry itself
        return
    txn.call([(basis._FAMILIES, name)], lambda: basis.register_basis_family(family))


def _symbolic(name: str, fn: Any, txn: Transaction) -> None:
    from physkan.symbolic import library

    if library._REGISTRY.get(name) is fn:
        return
    txn.call([(library._REGISTRY, name)], lambda: library.register_symbolic(fn))


def numpy_shadows(name: str) -> bool:
    """Whether a ``numpy_functions`` key would replace a name numpy itself provides."""
    import numpy

    return hasattr(numpy, name) or name in {"pi", "e", "E", "I", "nan", "inf"}


def _record_extras(manager: PhyskanPluginManager, plugin: str, record: SymbolicLibraryRecord,
                   txn: Transaction) -> None:  # fmt: skip
    from physkan.problems import expressions
    from physkan.symbolic import simplify

    from .numeric import NUMPY_FUNCTIONS

    for key, value in record.parse_names.items():
        old = expressions.FUNCTIONS.get(key, _MISSING)
        if old is _MISSING:
            txn.write(expressions.FUNCTIONS, key, value)
        elif old is not value:
            manager.refuse(plugin, "parse_names", key, "name already means something else in formulas")
    for key, value in record.numpy_functions.items():
        if not callable(value):
            raise TypeError(f"numpy_functions[{key!r}] is not callable")
        if numpy_shadows(key):
            manager.refuse(plugin, "numpy_functions", key,
                           f"shadows numpy.{key}, which sympy's numpy printer already uses "
                           "for sympy's own function; refused so data stay correct")  # fmt: skip
        elif NUMPY_FUNCTIONS.get(key, value) is not value:
            manager.refuse(plugin, "numpy_functions", key, "name taken by an earlier plugin")
        else:
            txn.write(NUMPY_FUNCTIONS, key, value)
    for key, value in record.torch_functions.items():
        current = simplify._PLUGIN_TORCH.get(key, _MISSING)
        if current is value:
            continue
        if current is not _MISSING:
            manager.refuse(plugin, "torch_functions", key, "name taken by an earlier plugin")
        elif key in simplify._TORCH_NAMESPACE:
            manager.refuse(plugin, "torch_functions", key, "built into the torch evaluator")
        else:
            txn.call([(simplify._PLUGIN_TORCH, key), (simplify._TORCH_NAMESPACE, key)],
                     lambda k=key, v=value: simplify.register_torch_function(k, v))  # fmt: skip


def _problem_type(record: ProblemTypeRecord, txn: Transaction) -> None:
    from physkan.problems import datasets, spec

    name = record.name
    txn.call([(spec.PROBLEM_TYPES, name)],
             lambda: spec.register_problem_type(name, record.system_model))  # fmt: skip
    if record.data_maker is not None:
        txn.call([(datasets.DATA_MAKERS, name)],
                 lambda: datasets.register_data_maker(name, record.data_maker))  # fmt: skip
    if record.objective is not None:
        from physkan.train import objectives

        txn.call([(objectives.OBJECTIVES, name), (objectives.DATASET_KEYS, name)],
                 lambda: objectives.register_objective(name, record.objective,
                                                       tuple(record.dataset_keys)))  # fmt: skip


def _problem(record: ProblemRecord, txn: Transaction) -> None:
    from physkan.problems import loader

    source = record.source
    if isinstance(source, Mapping):
        source = loader.problem_from_dict(source, source=f"plugin:{record.name}")
    elif isinstance(source, (str, Path)) and not Path(source).is_file():
        raise FileNotFoundError(f"problem {record.name!r}: no problem file {source}")
    txn.call([(loader.EXTRA_SOURCES, record.name)],
             lambda: loader.register_problem(record.name, source))  # fmt: skip
