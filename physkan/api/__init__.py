"""The Python front door: a scikit-learn style estimator and one-call training.

* :class:`KANRegressor` — ``fit(X, y)`` runs the discovery engine of ``physkan discover`` on
  arrays and keeps the formula, the Pareto front and the KAN (``docs/python_api.md``);
* :func:`fit` — plain regression training of a KAN (``physkan.fit(model, x, y)``).

Both are re-exported at the top level (``physkan.KANRegressor``, ``physkan.fit``).
"""

from physkan.api.estimator import KANRegressor
from physkan.api.inputs import DataConversionWarning, NotFittedError
from physkan.api.training import fit

__all__ = ["DataConversionWarning", "KANRegressor", "NotFittedError", "fit"]
