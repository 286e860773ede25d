"""``KANRegressor``: symbolic regression with the discovery engine, scikit-learn style.

>>> model = KANRegressor(time_budget=30)
>>> model.fit(X, y)                   # X (n_samples, n_features), y (n_samples,)
>>> model.formula_, model.equations_  # sympy formula; the Pareto front (simplest first)
>>> model.predict(X)                  # (n_samples,)

``fit`` runs the pipeline of ``physkan discover`` (:func:`physkan.discover.discover`: the
Occam structure search, KAN training, pruning, auto-symbolic, the Pareto front, all within
``time_budget`` seconds) on a regression problem built from the arrays
(:mod:`physkan.api.problem`). It follows scikit-learn's estimator conventions without
depending on scikit-learn: hyper-parameters are ``__init__`` keywords stored unchanged,
:meth:`get_params`/:meth:`set_params`, fitted attributes end in ``_``, :meth:`score` is R²,
and bad input raises ``ValueError`` naming the argument (``docs/python_api.md``).
"""

from __future__ import annotations

import inspect
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sympy

from physkan.api.evaluate import predictor
from physkan.api.inputs import (
    check_feature_names,
    check_fitted,
    check_predict_names,
    check_X,
    check_y,
    column_names,
    default_names,
)
from physkan.api.problem import build_problem, output_name, write_table
from physkan.symbolic.simplify import to_latex

__all__ = ["KANRegressor"]

#: rows of the training data kept to draw the network in notebooks.
PLOT_ROWS = 256
#: the least share of ``time_budget`` the discovery gets, however long the imports took.
MIN_SEARCH_SHARE = 0.5


def _load_engine() -> None:
    """Import the modules the regression discovery imports on first use (Lightning among
    them, seconds on a cold start), so that fit() can count them into its time budget."""
    import physkan.interpret.prune  # noqa: F401
    import physkan.problems.physics_makers  # noqa: F401
    import physkan.strategies.augmented  # noqa: F401
    import physkan.symbolic.compile  # noqa: F401
    import physkan.train  # noqa: F401


def _equations(pareto: Sequence[Any]) -> Any:
    """The Pareto front as a table: a pandas DataFrame when pandas is installed, else a list
    of dicts; columns ``complexity``, ``test_rmse``, ``equation``, ``sympy_format``, ``source``."""
    rows = [{"complexity": c.complexity, "test_rmse": c.test_rmse, "equation": str(c.formula),
             "sympy_format": c.formula, "source": c.source} for c in pareto]  # fmt: skip
    try:
        import pandas as pd
    except ImportError:
        return rows
    return pd.DataFrame(rows, columns=["complexity", "test_rmse", "equation", "sympy_format", "source"])


class KANRegressor:
    """Find a closed-form formula ``y = f(X)`` with Kolmogorov-Arnold networks.

    Args:
        time_budget: seconds one :meth:`fit` may take (the discovery answers with the best
            formula so far when it runs out; ``metrics_["budget_exhausted"]`` is then 1).
        width: the largest network tried, e.g. ``[3, 5, 1]`` or ``[3, [4, 2], 1]`` (``None``:
            ``[n_features, 5, 1]``); smaller structures are tried first.
        grid, k, basis: spline grid intervals, spline order and basis family of the KANs.
        steps, optimizer: training steps of each network and ``"lbfgs"`` or ``"adam"``.
        library: symbolic function names edges may snap to (``None``: the default library).
        test_size: fraction of the rows held out to choose and judge formulas.
        random_state: seed of the split and of the networks (an int; ``None`` means 0).
        verbose: print the discovery's progress messages.

    Fitted attributes: ``formula_`` (sympy), ``equations_`` (the Pareto front),
    ``model_`` (the trained or compiled KAN; ``None`` when the formula has none),
    ``metrics_`` (``test_rmse``, ``budget_exhausted``, …), ``recovered_``/``recovery_``
    (against ``fit(..., truth=...)``; ``None`` without a truth), ``variable_names_``,
    ``n_features_in_``, ``feature_names_in_`` (DataFrame input only), ``discovery_`` (the
    :class:`~physkan.strategies.base.Discovery`).
    """

    def __init__(
        self,
        *,
        time_budget: float = 60.0,
        width: Sequence[int | Sequence[int]] | None = None,
        grid: int = 5,
        k: int = 3,
        basis: str = "bspline",
        steps: int = 200,
        optimizer: str = "lbfgs",
        library: Sequence[str] | None = None,
        test_size: float = 0.2,
        random_state: int | None = 0,
        verbose: bool = False,
    ) -> None:
        self.time_budget = time_budget
        self.width = width
        self.grid = grid
        self.k = k
        self.basis = basis
        self.steps = steps
        self.optimizer = optimizer
        self.library = library
        self.test_size = test_size
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ parameters (sklearn API)
    @classmethod
    def _get_param_names(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters.values()
        return sorted(p.name for p in params if p.name != "self")

    def get_params(self, deep: bool = True) -> dict[str, Any]:  # noqa: ARG002 - sklearn API
        """The hyper-parameters, as passed to ``__init__`` (no nested estimators)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> KANRegressor:
        """Set hyper-parameters by name; returns ``self``.

        Raises:
            ValueError: an unknown parameter name.
        """
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for estimator {type(self).__name__}; "
                                 f"valid parameters are: {', '.join(valid)}")  # fmt: skip
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if defaults.get(k) is not v
                   and not (isinstance(v, (int, float)) and v == defaults.get(k))]  # fmt: skip
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's tags (only scikit-learn calls this, so it is imported here)."""
        from sklearn.utils import InputTags, RegressorTags, Tags, TargetTags

        return Tags(estimator_type="regressor", target_tags=TargetTags(required=True),
                    regressor_tags=RegressorTags(), input_tags=InputTags(),
                    transformer_tags=None, classifier_tags=None)  # fmt: skip

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "formula_")

    # ------------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any, variable_names: Sequence[str] | None = None,
            truth: str | None = None) -> KANRegressor:  # fmt: skip
        """Discover ``y = f(X)``.

        Args:
            X: features ``(n_samples, n_features)``: an array or a pandas DataFrame (its
                string column names become the variable names).
            y: target ``(n_samples,)``.
            variable_names: names of the features in the formula (default: the DataFrame's
                columns, else ``x0 … x{n-1}``).
            truth: an optional known formula of those names; ``recovered_`` then says
                whether the found formula equals it.

        Returns:
            ``self``, fitted.

        Raises:
            ValueError: bad ``X``/``y`` (shape, NaN/inf, lengths), bad names or parameters.
        """
        from physkan.discover import discover

        start = time.perf_counter()  # the budget covers all of fit(), imports included
        _load_engine()
        array = check_X(X)
        target = check_y(y, array.shape[0])
        columns = column_names(X)
        names = variable_names if variable_names is not None else columns
        what = "variable_names" if variable_names is not None else "X.columns"
        names = default_names(array.shape[1]) if names is None else check_feature_names(
            names, array.shape[1], what)  # fmt: skip
        output = output_name(names)
        with tempfile.TemporaryDirectory(prefix="physkan-fit-") as tmp:
            path = write_table(Path(tmp) / "data.h5", array, target, names, output)
            params = self.get_params()
            budget = params["time_budget"]
            if isinstance(budget, (int, float)) and not isinstance(budget, bool) and budget > 0:
                left = budget - (time.perf_counter() - start)  # what the checks and imports left
                params["time_budget"] = max(left, MIN_SEARCH_SHARE * budget)
            spec = build_problem(path, array, names, output, params, truth)
            result = discover(spec, report=print if self.verbose else None)
        result.provenance = {"source": "arrays", "rows": int(array.shape[0]),
                             "problem_source": "KANRegressor"}  # fmt: skip
        self._set_fitted(result, names, columns, array)
        return self

    def _set_fitted(self, result: Any, names: list[str], columns: list[str] | None,
                    X: np.ndarray) -> None:  # fmt: skip
        """Store the fitted attributes of a discovery ``result`` on ``X (N, d)``."""
        self.discovery_ = result
        self.variable_names_ = list(names)
        self.n_features_in_ = len(names)
        if columns is not None:
            self.feature_names_in_ = np.asarray(columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.formula_ = result.formulas[0]
        self.model_ = result.model
        self.equations_ = _equations(result.pareto)
        self.metrics_ = dict(result.metrics)
        self.recovered_ = result.recovered
        self.recovery_ = result.recovery
        self._X_plot = np.array(X[:PLOT_ROWS], dtype=np.float64)

    # --------------------------------------------------------------------- using it
    def predict(self, X: Any) -> np.ndarray:
        """``f(X)``: the formula (or, where edges stayed splines, the network) ``(n_samples,)``."""
        check_fitted(self)
        check_predict_names(X, getattr(self, "feature_names_in_", None), type(self).__name__)
        array = check_X(X, n_features=self.n_features_in_, owner=type(self).__name__)
        return predictor(self.formula_, self.variable_names_, self.model_)(array)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """The coefficient of determination R² of :meth:`predict` on ``(X, y)``."""
        pred = self.predict(X)
        target = check_y(y, pred.shape[0], min_samples=1)
        w = np.ones_like(target) if sample_weight is None else np.asarray(sample_weight, float)
        if w.shape != target.shape:
            raise ValueError(f"sample_weight: expected shape {target.shape}, got {w.shape}")
        mean = np.average(target, weights=w)
        ss_res = float(np.sum(w * (target - pred) ** 2))
        ss_tot = float(np.sum(w * (target - mean) ** 2))
        if ss_tot == 0:
            return 1.0 if ss_res == 0 else 0.0
        return 1.0 - ss_res / ss_tot

    def sympy(self, index: int | None = None) -> sympy.Expr:
        """The chosen formula, or row ``index`` of :attr:`equations_` (simplest first)."""
        check_fitted(self)
        if index is None:
            return self.formula_
        return self.discovery_.pareto[index].formula

    def latex(self, index: int | None = None) -> str:
        """:meth:`sympy` as LaTeX."""
        return to_latex(self.sympy(index))

    # ------------------------------------------------------------ files and the zoo
    def save(self, path: str | Path) -> Path:
        """Write the fitted estimator to an HDF5 file (a physkan model file plus the
        formula, names, parameters and metrics; see :mod:`physkan.api.persist`)."""
        from physkan.api.persist import save_estimator

        check_fitted(self)
        return save_estimator(self, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> KANRegressor:
        """Read an estimator written by :meth:`save` (ready to ``predict``)."""
        from physkan.api.persist import load_estimator

        return load_estimator(cls, Path(path))

    def to_zoo(self, name: str, zoo: str | Path | None = None) -> str:
        """Register the fitted model as a new version of ``name`` in a local zoo (default
        the user's zoo directory); returns ``"name:version"``."""
        from physkan.api.persist import register_estimator

        check_fitted(self)
        return register_estimator(self, name, zoo)

    # ------------------------------------------------------------------- notebooks
    def _repr_latex_(self) -> str | None:
        if not hasattr(self, "formula_"):
            return None
        from physkan.strategies.display import result_latex

        return result_latex([self.discovery_.outputs[0]], [self.formula_])

    def _repr_html_(self) -> str:
        import html

        if not hasattr(self, "formula_"):
            return f"<pre>{html.escape(repr(self))} (not fitted)</pre>"
        from physkan.strategies.display import result_html

        d = self.discovery_
        return result_html(title=repr(self), outputs=d.outputs[:1], formulas=[self.formula_],
                           recovered=self.recovered_, recovery=self.recovery_, metrics=self.metrics_,
                           pareto=d.pareto, model=self.model_, x=self._X_plot)  # fmt: skip
