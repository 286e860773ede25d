"""Problem files: the schema, the built-in problems and the data they describe.

>>> from physkan.problems import load_problem, make_dataset
>>> spec = load_problem("tutorial")          # a built-in name, a path, or a plugin's name
>>> data = make_dataset(spec)                # sampled from the ground truth, float64
>>> data.x_train.shape, data.inputs, data.outputs
(torch.Size([1000, 2]), ['x', 'y'], ['f'])

Problems (:data:`PROBLEMS`) and problem types (:data:`PROBLEM_TYPES`) are registries
(:class:`physkan.registry.Registry`). Plugins extend this package with :func:`register_problem_type` (a new ``type`` and its
``[system]`` model), :func:`register_problem` (a named problem) and
:func:`register_data_maker` (how to build data for a type).

The public names are imported on first use (PEP 562 ``__getattr__``), so the light
listing of :mod:`physkan.problems.catalog` (``physkan problems``) imports neither torch
nor sympy: ``from physkan.problems import load_problem`` works as before.
"""

from __future__ import annotations

from physkan._lazy import lazy_exports

#: public name -> submodule (of this package) it lives in; imported on first use.
_LAZY = {
    "DATA_MAKERS": "datasets",
    "Dataset": "datasets",
    "make_dataset": "datasets",
    "make_regression_dataset": "datasets",
    "register_data_maker": "datasets",
    "ProblemError": "errors",
    "ExpressionError": "expressions",
    "parse_expression": "expressions",
    "FeynmanEquation": "feynman",
    "feynman_problem": "feynman",
    "read_feynman_csv": "feynman",
    "BUILTIN_DIR": "catalog",
    "ProblemSummary": "catalog",
    "EXTRA_SOURCES": "loader",
    "PROBLEMS": "loader",
    "builtin_names": "loader",
    "list_problems": "loader",
    "load_problem": "loader",
    "problem_from_dict": "loader",
    "register_problem": "loader",
    "PROBLEM_TYPES": "spec",
    "DataSection": "spec",
    "DiscoverSection": "spec",
    "ModelSection": "spec",
    "ProblemSpec": "spec",
    "TrainSection": "spec",
    "register_problem_type": "spec",
    "ConservationSystem": "systems",
    "LagrangianSystem": "systems",
    "MetricSystem": "systems",
    "RegressionSystem": "systems",
    "SystemBase": "systems",
    "velocity_name": "systems",
    "read_columns": "tables",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = sorted(_LAZY)
