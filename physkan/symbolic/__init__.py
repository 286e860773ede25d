"""Symbolic toolkit: formula front end, function library, affine fitting, constant snapping,
equivalence checks.

Pure functions on tensors and sympy expressions; the KAN network calls into these.
:mod:`physkan.symbolic.parse` is the one formula front end (``parse_expression``, the
formula function table, ``lambdify_numpy``/``lambdify_torch``).
"""

from physkan.symbolic.compile import kanpiler
from physkan.symbolic.denoise import denoise_formula
from physkan.symbolic.edges import (
    ENGINE_AUTO_SYMBOLIC,
    AutoSymbolicReport,
    auto_symbolic,
    choose_candidate,
    fix_symbolic,
    suggest_edge,
    unfix_symbolic,
)
from physkan.symbolic.equivalence import Equivalence, equivalent
from physkan.symbolic.expand import augment_input, expand_depth, expand_width, perturb
from physkan.symbolic.fit import (
    AffineFit,
    Candidate,
    affine_fit,
    fit_coefficients_closed_form,
    score_candidate,
    suggest_symbolic,
)
from physkan.symbolic.formula import Formula, NumericEdgeError, model_formula
from physkan.symbolic.library import (
    DEFAULT_LIBRARY,
    PHYSICS_LIBRARY,
    SymbolicFunction,
    UnknownSymbolicError,
    available_symbolic,
    get_symbolic,
    register_symbolic,
    resolve_library,
)
from physkan.symbolic.parse import (
    FORMULA_FUNCTIONS,
    ExpressionError,
    FormulaFunction,
    lambdify_numpy,
    lambdify_torch,
    parse_expression,
    register_formula_function,
)
from physkan.symbolic.refit import refit_symbolic, symbolic_parameters
from physkan.symbolic.simplify import (
    DEFAULT_CONSTANTS,
    clean_formula,
    formula_error,
    mixes_transcendentals,
    snap_candidates,
    snap_constants,
    snap_to_data,
    snap_value,
    to_latex,
    to_text,
)
from physkan.symbolic.snap_noise import snap_to_noise

__all__ = [
    "ENGINE_AUTO_SYMBOLIC",
    "PHYSICS_LIBRARY",
    "AutoSymbolicReport",
    "choose_candidate",
    "mixes_transcendentals",
    "refit_symbolic",
    "snap_candidates",
    "symbolic_parameters",
    "Formula",
    "NumericEdgeError",
    "augment_input",
    "auto_symbolic",
    "expand_depth",
    "expand_width",
    "fix_symbolic",
    "kanpiler",
    "model_formula",
    "perturb",
    "suggest_edge",
    "unfix_symbolic",
    "DEFAULT_CONSTANTS",
    "DEFAULT_LIBRARY",
    "FORMULA_FUNCTIONS",
    "ExpressionError",
    "FormulaFunction",
    "AffineFit",
    "Candidate",
    "Equivalence",
    "SymbolicFunction",
    "UnknownSymbolicError",
    "affine_fit",
    "available_symbolic",
    "clean_formula",
    "equivalent",
    "fit_coefficients_closed_form",
    "formula_error",
    "get_symbolic",
    "lambdify_numpy",
    "lambdify_torch",
    "parse_expression",
    "register_formula_function",
    "register_symbolic",
    "resolve_library",
    "score_candidate",
    "snap_constants",
    "snap_to_data",
    "snap_to_noise",
    "denoise_formula",
    "snap_value",
    "suggest_symbolic",
    "to_latex",
    "to_text",
]
