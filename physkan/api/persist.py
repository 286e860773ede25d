"""A fitted :class:`~physkan.api.estimator.KANRegressor` in a file or in the zoo.

File layout (HDF5, written atomically through :func:`physkan._fs.atomic_file`): the model
file of :func:`physkan.io.save_model` (``/config``, ``/state/...``; so ``physkan plot`` and
:func:`physkan.io.load_model` read it too) plus

```
/estimator        JSON: format, format_version, params, variables, feature_names_in,
                  output, formula (text), formula_tree, equations, metrics, recovered, recovery
/estimator_x      the training rows kept to draw the network (float64, at most 256)
```

Formulas are stored as a tree of whitelisted sympy nodes (numbers, the problem's symbols,
``Add``/``Mul``/``Pow``, the formula-function table, spline edges ``phi_l_i_j``) and rebuilt
without ``eval``: a model file from elsewhere cannot run code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import sympy
from sympy.core.function import AppliedUndef

from physkan import _fs
from physkan.io import ModelFileError, load_model, save_model
from physkan.symbolic.pareto import Candidate
from physkan.symbolic.parse import formula_names
from physkan.symbolic.simplify import to_latex, to_text

__all__ = ["FORMAT", "expr_from_tree", "expr_to_tree", "load_estimator", "register_estimator", "save_estimator"]

FORMAT = "physkan-estimator"
FORMAT_VERSION = 1
_EDGE = re.compile(r"phi_\d+_\d+_\d+")
_OPS = {"Add": sympy.Add, "Mul": sympy.Mul, "Pow": sympy.Pow}


def _tables() -> tuple[dict[str, Any], dict[str, Any]]:
    """Function class name -> function, constant class name -> constant (formula table)."""
    funcs, consts = {}, {}
    for obj in formula_names().values():
        if isinstance(obj, sympy.FunctionClass):
            funcs[obj.__name__] = obj
        elif isinstance(obj, sympy.Basic) and obj.is_number:
            consts[type(obj).__name__] = obj
    return funcs, consts


def expr_to_tree(expr: sympy.Expr) -> Any:
    """``expr`` as nested JSON lists; raises ``ValueError`` for a node with no safe form."""
    e = sympy.sympify(expr)
    if e.is_Symbol:
        return ["sym", e.name]
    if e.is_Integer:
        return ["int", str(e)]
    if e.is_Rational:
        return ["rat", str(e.p), str(e.q)]
    if e.is_Float:
        return ["float", repr(float(e))]
    name = type(e).__name__
    if name in _OPS:
        return [name, [expr_to_tree(a) for a in e.args]]
    if isinstance(e, AppliedUndef) and _EDGE.fullmatch(name):
        return ["edge", name, [expr_to_tree(a) for a in e.args]]
    funcs, consts = _tables()
    if name in funcs and isinstance(e, sympy.Function):
        return ["fn", name, [expr_to_tree(a) for a in e.args]]
    if name in consts:
        return ["const", name]
    raise ValueError(f"formula: cannot store the node {e} ({name})")


def expr_from_tree(tree: Any, variables: list[str]) -> sympy.Expr:
    """Rebuild :func:`expr_to_tree`'s output; only ``variables`` may appear as symbols.

    Raises:
        ModelFileError: a malformed tree or a node outside the whitelist.
    """
    funcs, consts = _tables()

    def build(node: Any) -> sympy.Expr:
        if not isinstance(node, list) or not node or not isinstance(node[0], str):
            raise ModelFileError(f"estimator.formula_tree: malformed node {node!r:.80}")
        kind, rest = node[0], node[1:]
        try:
            if kind == "sym" and rest[0] in variables:
                return sympy.Symbol(rest[0])
            if kind == "int":
                return sympy.Integer(int(rest[0]))
            if kind == "rat":
                return sympy.Rational(int(rest[0]), int(rest[1]))
            if kind == "float":
                return sympy.Float(float(rest[0]))
            if kind in _OPS:
                return _OPS[kind](*[build(a) for a in rest[0]])
            if kind == "edge" and _EDGE.fullmatch(rest[0]):
                return sympy.Function(rest[0])(*[build(a) for a in rest[1]])
            if kind == "fn" and rest[0] in funcs:
                return funcs[rest[0]](*[build(a) for a in rest[1]])
            if kind == "const" and rest[0] in consts:
                return consts[rest[0]]
        except (IndexError, TypeError, ValueError) as exc:
            raise ModelFileError(f"estimator.formula_tree: bad node {node!r:.80} ({exc})") from None
        raise ModelFileError(f"estimator.formula_tree: node {node!r:.80} is not allowed")

    return build(tree)


def _jsonable(value: Any) -> Any:
    """Parameters as JSON (numpy scalars to Python numbers, tuples to lists)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def save_estimator(est: Any, path: Path) -> Path:
    """Write the fitted estimator ``est`` to ``path`` (layout in the module docstring)."""
    import h5py

    d = est.discovery_
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "params": {k: _jsonable(v) for k, v in est.get_params().items()},
        "variables": est.variable_names_, "output": d.outputs[0],
        "feature_names_in": None if not hasattr(est, "feature_names_in_") else list(est.feature_names_in_),
        "formula": to_text(est.formula_), "formula_tree": expr_to_tree(est.formula_),
        "equations": [{"formula": expr_to_tree(c.formula), "complexity": c.complexity,
                       "test_rmse": c.test_rmse, "source": c.source} for c in d.pareto],
        "metrics": est.metrics_, "recovered": est.recovered_, "recovery": est.recovery_,
    }  # fmt: skip
    with _fs.atomic_file(path) as tmp:
        if est.model_ is not None:
            save_model(est.model_, tmp)
        with h5py.File(tmp, "a") as fh:
            fh["estimator"] = json.dumps(meta)
            fh["estimator_x"] = est._X_plot
    return path


def load_estimator(cls: type, path: Path) -> Any:
    """An instance of ``cls`` rebuilt from :func:`save_estimator`'s file, fitted.

    Raises:
        ModelFileError: (a ``ValueError``) not such a file, or a damaged one.
    """
    import h5py

    from physkan.strategies.base import Discovery

    try:
        with h5py.File(path, "r") as fh:
            if "estimator" not in fh:
                raise ModelFileError(f"{path}: not a saved KANRegressor (no /estimator)")
            meta = json.loads(fh["estimator"][()])
            x_plot = np.asarray(fh["estimator_x"][()], dtype=np.float64) if "estimator_x" in fh else None
            has_model = "config" in fh
    except (OSError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{path}: cannot read the estimator file ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a saved KANRegressor")
    if int(meta.get("format_version", -1)) > FORMAT_VERSION:
        raise ModelFileError(f"{path}: estimator format {meta['format_version']} is newer than "
                             "this physkan supports; upgrade physkan")  # fmt: skip
    try:
        names = [str(v) for v in meta["variables"]]
        formula = expr_from_tree(meta["formula_tree"], names)
        pareto = [Candidate(expr_from_tree(r["formula"], names), int(r["complexity"]),
                            float(r["test_rmse"]), str(r["source"])) for r in meta["equations"]]  # fmt: skip
        est = cls(**meta["params"])
        result = Discovery(problem="kanregressor", type="regression", variables=names,
                           outputs=[str(meta["output"])], formulas=[formula],
                           recovered=meta["recovered"], recovery=str(meta["recovery"]),
                           metrics=dict(meta["metrics"]), seconds=0.0,
                           model=load_model(path) if has_model else None, pareto=pareto)  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{path}: damaged estimator record ({exc})") from None
    columns = meta.get("feature_names_in")
    x = x_plot if x_plot is not None else np.zeros((0, len(names)))
    est._set_fitted(result, names, None if columns is None else list(columns), x)
    return est


def register_estimator(est: Any, name: str, zoo: str | Path | None = None) -> str:
    """Store the fitted estimator's network in a local zoo as a new version of ``name``.

    Returns ``"name:version"``. Raises ``ValueError`` when the fit kept no network.
    """
    from physkan.zoo import register_model

    if est.model_ is None:
        raise ValueError("model_: this fit kept no network to register (the formula has no KAN)")
    d = est.discovery_
    ref = register_model(
        est.model_, name=name, problem=name, formula=to_text(est.formula_),
        formula_latex=to_latex(est.formula_), formula_srepr=sympy.srepr(est.formula_),
        metrics={k: float(v) for k, v in est.metrics_.items() if isinstance(v, (int, float))},
        tags=["regression", "KANRegressor", "recovered" if est.recovered_ else "unverified"],
        training_config={k: _jsonable(v) for k, v in est.get_params().items()},
        provenance={"source": "KANRegressor", "variables": ", ".join(d.variables),
                    "output": d.outputs[0]},
        zoo=zoo,
    )  # fmt: skip
    return f"{ref.name}:{ref.version}"
