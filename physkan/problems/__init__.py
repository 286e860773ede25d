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
"""

from .datasets import (
    DATA_MAKERS,
    Dataset,
    make_dataset,
    make_regression_dataset,
    register_data_maker,
)
from .errors import ProblemError
from .expressions import ExpressionError, parse_expression
from .feynman import FeynmanEquation, feynman_problem, read_feynman_csv
from .loader import (
    BUILTIN_DIR,
    EXTRA_SOURCES,
    PROBLEMS,
    ProblemSummary,
    builtin_names,
    list_problems,
    load_problem,
    problem_from_dict,
    register_problem,
)
from .spec import (
    PROBLEM_TYPES,
    DataSection,
    DiscoverSection,
    ModelSection,
    ProblemSpec,
    TrainSection,
    register_problem_type,
)
from .systems import (
    ConservationSystem,
    LagrangianSystem,
    MetricSystem,
    RegressionSystem,
    SystemBase,
    velocity_name,
)
from .tables import read_columns

__all__ = [
    "BUILTIN_DIR",
    "DATA_MAKERS",
    "EXTRA_SOURCES",
    "PROBLEMS",
    "PROBLEM_TYPES",
    "ConservationSystem",
    "DataSection",
    "Dataset",
    "DiscoverSection",
    "ExpressionError",
    "FeynmanEquation",
    "LagrangianSystem",
    "MetricSystem",
    "ModelSection",
    "ProblemError",
    "ProblemSpec",
    "ProblemSummary",
    "RegressionSystem",
    "SystemBase",
    "TrainSection",
    "builtin_names",
    "feynman_problem",
    "list_problems",
    "load_problem",
    "make_dataset",
    "make_regression_dataset",
    "parse_expression",
    "problem_from_dict",
    "read_columns",
    "read_feynman_csv",
    "register_data_maker",
    "register_problem",
    "register_problem_type",
    "velocity_name",
]
