"""Built-in discovery strategies, one module per problem type (each registers itself)."""

from physkan.strategies import conservation, lagrangian, metric, regression

__all__ = ["conservation", "lagrangian", "metric", "regression"]
