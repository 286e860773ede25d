"""Register one plugin's accepted contributions into physkan's registries, all or none.

:meth:`PhyskanPluginManager.apply` calls :func:`apply_plugin` per plugin with a fresh
:class:`Transaction`. Every registration goes through a core module's public ``register_*``
function and is logged in the transaction, so when a later registration of the same plugin
raises, :meth:`Transaction.rollback` takes every entry back out (``Registry.unregister``)
and the plugin leaves nothing behind.

Not failures but *refusals* (listed by ``physkan plugins`` with the reason, the rest of the
plugin still registers):

* a name a registry already holds (:class:`~physkan.registry.NameClash`: built-ins win,
  then the first plugin), also reported as a :class:`PluginWarning`;
* a ``numpy_functions`` key that names something numpy already has (``sinc``, ``sin`` ...):
  sympy's numpy printer emits those names for sympy's own functions (``sinc(x)`` prints as
  ``sinc(x/pi)``, numpy's normalised sinc), so a plugin entry would silently change what
  the formula evaluates to;
* a ``torch_functions`` key that is built into the torch evaluator;
* a ``parse_names`` key that physkan (or an earlier plugin) already maps to something else.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from physkan.registry import BUILTIN, NameClash, Registry

from .hookspecs import ProblemRecord, ProblemTypeRecord, SymbolicLibraryRecord

if TYPE_CHECKING:  # pragma: no cover
    from .manager import PhyskanPluginManager

__all__ = ["PluginWarning", "Transaction", "apply_plugin", "numpy_shadows"]

_MISSING = object()


class PluginWarning(UserWarning):
    """A plugin contribution physkan refused (see ``physkan plugins``)."""


class Transaction:
    """Undo log of one plugin's registrations; :meth:`rollback` undoes them, newest first."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def register(self, registry: Registry[Any], name: str, register: Callable[[], None]) -> None:
        """Run ``register()`` (a public ``register_*`` call adding ``name`` to ``registry``)."""
        register()
        self._undo.append(lambda: registry.unregister(name))

    def call(self, tables: list[tuple[MutableMapping[str, Any], str]],
             register: Callable[[], Any]) -> None:  # fmt: skip
        """Run ``register()``, a public ``register_*`` function writing the given entries of
        plain dict tables (data makers, objectives); rollback restores their old values."""
        for table, key in tables:
            old = table.get(key, _MISSING)
            self._undo.append(lambda t=table, k=key, o=old: _restore(t, k, o))
        register()

    def rollback(self) -> None:
        """Undo every logged registration, newest first."""
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def _restore(table: MutableMapping[str, Any], key: str, old: Any) -> None:
    if old is _MISSING:
        table.pop(key, None)
    else:
        table[key] = old


def apply_plugin(manager: PhyskanPluginManager, plugin: str, items: Mapping[str, Mapping[str, Any]],
                 txn: Transaction) -> None:  # fmt: skip
    """Register ``items`` (kind -> name -> contribution) of ``plugin``; raises on failure.

    The caller rolls ``txn`` back when this raises.
    """
    for name, family in items.get("basis_families", {}).items():
        _basis(manager, plugin, name, family, txn)
    records: dict[int, SymbolicLibraryRecord] = {}
    for name, (fn, record) in items.get("symbolic", {}).items():
        _symbolic(manager, plugin, name, fn, txn)
        if record is not None:
            records[id(record)] = record
    for record in records.values():
        _formula_functions(manager, plugin, record, txn)
    for record in items.get("problem_types", {}).values():
        _problem_type(manager, plugin, record, txn)
    for record in items.get("problems", {}).values():
        _problem(manager, plugin, record, txn)


def _refuse_clash(manager: PhyskanPluginManager, plugin: str, kind: str, clash: NameClash) -> None:
    manager.refuse(plugin, kind, clash.name, str(clash))
    warnings.warn(f"plugin {plugin!r}: {clash}", PluginWarning, stacklevel=3)


def _register(manager: PhyskanPluginManager, plugin: str, kind: str, registry: Registry[Any],
              name: str, item: Any, register: Callable[[], None], txn: Transaction) -> None:  # fmt: skip
    """``register()`` unless ``registry`` already holds ``item`` itself; a clash is refused."""
    if registry.find(name) is item:
        return
    try:
        txn.register(registry, name, register)
    except NameClash as clash:
        _refuse_clash(manager, plugin, kind, clash)


def _basis(manager: PhyskanPluginManager, plugin: str, name: str, family: Any,
           txn: Transaction) -> None:  # fmt: skip
    from physkan.kan.basis import BASIS_FAMILIES, register_basis_family

    _register(manager, plugin, "basis_families", BASIS_FAMILIES, name, family,
              lambda: register_basis_family(family, source=plugin), txn)  # fmt: skip


def _symbolic(manager: PhyskanPluginManager, plugin: str, name: str, fn: Any,
              txn: Transaction) -> None:  # fmt: skip
    from physkan.symbolic.library import SYMBOLIC, register_symbolic

    _register(manager, plugin, "symbolic", SYMBOLIC, name, fn,
              lambda: register_symbolic(fn, source=plugin), txn)  # fmt: skip


def numpy_shadows(name: str) -> bool:
    """Whether a ``numpy_functions`` key would replace a name numpy itself provides."""
    import numpy

    return hasattr(numpy, name) or name in {"pi", "e", "E", "I", "nan", "inf"}


def _formula_functions(manager: PhyskanPluginManager, plugin: str, record: SymbolicLibraryRecord,
                       txn: Transaction) -> None:  # fmt: skip
    """One formula function per name of the record's parse, numpy and torch tables."""
    from physkan.symbolic.parse import FORMULA_FUNCTIONS, register_formula_function

    for key, value in record.numpy_functions.items():
        if not callable(value):
            raise TypeError(f"numpy_functions[{key!r}] is not callable")
    names = dict.fromkeys([*record.parse_names, *record.numpy_functions, *record.torch_functions])
    for key in names:
        sympy_obj = record.parse_names.get(key)
        numpy_fn = record.numpy_functions.get(key)
        torch_fn = record.torch_functions.get(key)
        if numpy_fn is not None and numpy_shadows(key):
            manager.refuse(plugin, "numpy_functions", key,
                           f"shadows numpy.{key}, which sympy's numpy printer already uses "
                           "for sympy's own function; refused so data stay correct")  # fmt: skip
            numpy_fn = None
        old = FORMULA_FUNCTIONS.find(key)
        if old is not None:
            _refuse_taken(manager, plugin, key, old, FORMULA_FUNCTIONS.source(key),
                          sympy_obj, numpy_fn, torch_fn)  # fmt: skip
            continue
        if sympy_obj is None and numpy_fn is None and torch_fn is None:
            continue
        txn.register(FORMULA_FUNCTIONS, key,
                     lambda k=key, s=sympy_obj, t=torch_fn, n=numpy_fn:
                     register_formula_function(k, s, torch=t, numpy=n, source=plugin))  # fmt: skip


def _refuse_taken(manager: PhyskanPluginManager, plugin: str, key: str, old: Any,
                  owner: str | None, sympy_obj: Any, numpy_fn: Any, torch_fn: Any) -> None:  # fmt: skip
    """Refuse the parts of ``key`` that differ from the formula function ``old`` already has."""
    builtin = owner == BUILTIN
    if sympy_obj is not None and old.sympy is not sympy_obj:
        manager.refuse(plugin, "parse_names", key, "name already means something else in formulas")
    if numpy_fn is not None and old.numpy is not numpy_fn:
        manager.refuse(plugin, "numpy_functions", key, "name taken by an earlier plugin")
    if torch_fn is not None and old.torch is not torch_fn:
        reason = "built into the torch evaluator" if builtin else "name taken by an earlier plugin"
        manager.refuse(plugin, "torch_functions", key, reason)


def _problem_type(manager: PhyskanPluginManager, plugin: str, record: ProblemTypeRecord,
                  txn: Transaction) -> None:  # fmt: skip
    from physkan.problems import datasets
    from physkan.problems.types import PROBLEM_TYPES, register_problem_type

    name = record.name
    _register(manager, plugin, "problem_types", PROBLEM_TYPES, name, record.system_model,
              lambda: register_problem_type(name, record.system_model, source=plugin,
                                            replace=False), txn)  # fmt: skip
    if record.data_maker is not None:
        txn.call([(datasets.DATA_MAKERS, name)],
                 lambda: datasets.register_data_maker(name, record.data_maker))  # fmt: skip
    if record.objective is not None:
        from physkan.train import objectives

        txn.call([(objectives.OBJECTIVES, name), (objectives.DATASET_KEYS, name)],
                 lambda: objectives.register_objective(name, record.objective,
                                                       tuple(record.dataset_keys)))  # fmt: skip
    if record.strategy is not None:
        from physkan.strategies.base import STRATEGIES, register_strategy

        _register(manager, plugin, "strategies", STRATEGIES, name, record.strategy,
                  lambda: register_strategy(name, record.strategy, source=plugin), txn)  # fmt: skip


def _problem(manager: PhyskanPluginManager, plugin: str, record: ProblemRecord,
             txn: Transaction) -> None:  # fmt: skip
    from physkan.problems import loader

    source = record.source
    if isinstance(source, Mapping):
        source = loader.problem_from_dict(source, source=f"plugin:{record.name}")
    elif isinstance(source, (str, Path)) and not Path(source).is_file():
        raise FileNotFoundError(f"problem {record.name!r}: no problem file {source}")
    _register(manager, plugin, "problems", loader.PROBLEMS, record.name, source,
              lambda: loader.register_problem(record.name, source, source=plugin,
                                              replace=False), txn)  # fmt: skip
