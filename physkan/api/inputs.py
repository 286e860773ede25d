"""Input checks of the scikit-learn style API: arrays, feature names, fitted state.

Everything here follows scikit-learn's conventions without importing scikit-learn (it is a
development dependency only): ``X`` is 2-D ``(n_samples, n_features)``, ``y`` is 1-D
``(n_samples,)`` (a column ``(n_samples, 1)`` is accepted with a
:class:`DataConversionWarning`), values are finite real numbers, and the errors are
``ValueError``/``TypeError`` whose message names the argument. pandas is optional and never
imported here: a DataFrame is recognised by its ``columns`` attribute.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np

from physkan.errors import PhyskanError

__all__ = [
    "MIN_SAMPLES",
    "DataConversionWarning",
    "NotFittedError",
    "check_X",
    "check_feature_names",
    "check_fitted",
    "check_predict_names",
    "check_y",
    "sklearn_twin",
    "column_names",
    "default_names",
]

#: rows a fit needs: two to train on, one held out to choose the formula.
MIN_SAMPLES = 3


class NotFittedError(PhyskanError, ValueError, AttributeError):
    """``predict``/``score``/``sympy`` … called before ``fit`` (scikit-learn's convention:
    both a ``ValueError`` and an ``AttributeError``)."""


class DataConversionWarning(UserWarning):
    """``y`` was a column vector ``(n, 1)`` and was flattened (as scikit-learn warns)."""


def _as_float_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a float64 array; complex, non-numeric and non-finite values refused."""
    if hasattr(value, "iloc") and hasattr(value, "to_numpy"):  # pandas, without importing it
        value = value.to_numpy()
    if hasattr(value, "toarray") or type(value).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name}: sparse input is not supported; pass a dense array (toarray())")
    array = np.asarray(value)
    if np.iscomplexobj(array):
        raise ValueError(f"{name}: Complex data not supported (got dtype {array.dtype})")
    array = np.asarray(array, dtype=np.float64)  # a non-number raises TypeError/ValueError
    if array.size and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise ValueError(f"{name}: Input contains NaN or infinity ({bad} value(s)); "
                         "remove or impute them")  # fmt: skip
    return array


def check_X(X: Any, *, n_features: int | None = None, owner: str = "KANRegressor") -> np.ndarray:
    """``X`` as a float64 array ``(n_samples, n_features)``.

    Raises:
        ValueError: not 2-D, no samples or features, NaN/inf, complex values, or (with
            ``n_features``) a different number of columns than at fit time.
    """
    array = _as_float_array(X, "X")
    if array.ndim != 2:
        raise ValueError(
            f"X: expected a 2-D array (n_samples, n_features), got shape {array.shape}. "
            "Reshape your data either using X.reshape(-1, 1) if it has a single feature or "
            "X.reshape(1, -1) if it contains a single sample"
        )
    if array.shape[0] == 0:
        raise ValueError(f"X: Found array with 0 sample(s) (shape={array.shape}) while a "
                         "minimum of 1 is required.")  # fmt: skip
    if array.shape[1] == 0:
        raise ValueError(f"X: Found array with 0 feature(s) (shape={array.shape}) while a "
                         "minimum of 1 is required.")  # fmt: skip
    if n_features is not None and array.shape[1] != n_features:
        raise ValueError(
            f"X has {array.shape[1]} features, but {owner} is expecting {n_features} "
            "features as input"
        )
    return array


def check_y(y: Any, n_samples: int, min_samples: int = MIN_SAMPLES) -> np.ndarray:
    """``y`` as a float64 vector ``(n_samples,)``; a column ``(n, 1)`` is flattened with a
    :class:`DataConversionWarning`.

    Raises:
        ValueError: ``y`` is missing, has several columns, NaN/inf, or another length than X.
    """
    if y is None:
        raise ValueError("y: KANRegressor requires y to be passed, but the target y is None")
    array = _as_float_array(y, "y")
    if array.ndim == 2 and array.shape[1] == 1:
        warnings.warn(
            sklearn_twin(DataConversionWarning)(
                "A column-vector y was passed when a 1d array was expected. Please change "
                "the shape of y to (n_samples,), for example using ravel()."
            ),
            stacklevel=3,
        )
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"y: expected a 1-D array (n_samples,), got shape {array.shape}; "
                         "fit one KANRegressor per output")  # fmt: skip
    if array.shape[0] != n_samples:
        raise ValueError(
            f"y: Found input variables with inconsistent numbers of samples: X has "
            f"{n_samples} rows, y has {array.shape[0]}"
        )
    if n_samples < min_samples:
        raise ValueError(f"X: n_samples = {n_samples}: a fit needs at least {min_samples} "
                         "samples (two to train on, one held out)")  # fmt: skip
    return array


def column_names(X: Any) -> list[str] | None:
    """The column names of a DataFrame ``X`` when they are all strings, else ``None``."""
    columns = getattr(X, "columns", None)
    if columns is None or not hasattr(X, "iloc"):
        return None
    names = list(columns)
    return names if names and all(isinstance(n, str) for n in names) else None


def default_names(n_features: int) -> list[str]:
    """``x0 … x{n-1}``: the variable names of columns without names (PySR's convention)."""
    return [f"x{i}" for i in range(n_features)]


def check_feature_names(names: Sequence[Any], n_features: int, what: str) -> list[str]:
    """``names`` as formula variable names: one per column, distinct, valid identifiers.

    Raises:
        ValueError: naming ``what`` (``variable_names`` or ``X.columns``) and the bad name.
    """
    from physkan.problems.expressions import check_name

    names = list(names)
    if len(names) != n_features:
        raise ValueError(f"{what}: {len(names)} names for {n_features} features")
    for name in names:
        try:
            check_name(name)
        except ValueError as err:
            raise ValueError(f"{what}: {err}; pass variable_names=[...] to rename") from None
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"{what}: duplicate name(s) {', '.join(twice)}")
    return names


def check_predict_names(X: Any, fitted: Sequence[str] | None, owner: str) -> None:
    """scikit-learn's feature-name consistency: an error when a DataFrame's columns differ
    from those seen in ``fit``, a warning when only one of fit/predict had names."""
    names = column_names(X)
    if names is None and fitted is None:
        return
    if names is None:
        warnings.warn(f"X does not have valid feature names, but {owner} was fitted with "
                      "feature names", UserWarning, stacklevel=3)  # fmt: skip
    elif fitted is None:
        warnings.warn(f"X has feature names, but {owner} was fitted without feature names",
                      UserWarning, stacklevel=3)  # fmt: skip
    elif list(names) != list(fitted):
        raise ValueError(
            "The feature names should match those that were passed during fit: "
            f"fit saw {list(fitted)}, X has {list(names)}"
        )


@cache
def _twin(cls: type, sklearn_class: type | None) -> type:
    """``cls``, or a subclass of both ``cls`` and scikit-learn's class of the same role."""
    if sklearn_class is None:
        return cls
    return type(cls.__name__, (cls, sklearn_class), {"__module__": __name__})


def sklearn_twin(cls: type) -> type:
    """``cls`` (:class:`NotFittedError`, :class:`DataConversionWarning`) made also an
    instance of scikit-learn's class of that name when scikit-learn is already loaded, so
    its checks and filters see it; scikit-learn is never imported here."""
    sklearn_exceptions = sys.modules.get("sklearn.exceptions")
    return _twin(cls, getattr(sklearn_exceptions, cls.__name__, None))


def check_fitted(estimator: Any, attribute: str = "formula_") -> None:
    """Raise :class:`NotFittedError` unless ``estimator`` has been fitted.

    When scikit-learn is loaded in the process the error is also an instance of
    ``sklearn.exceptions.NotFittedError`` (without importing scikit-learn otherwise).
    """
    if not hasattr(estimator, attribute):
        raise sklearn_twin(NotFittedError)(
            f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
            "appropriate arguments before using this estimator."
        )
