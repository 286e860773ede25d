"""Built-in discovery strategies, one module per problem type (each registers itself)."""

from physkan.strategies import conservation, lagrangian, metric, regression

# The augmented path wraps the regression strategy registered just above, so it must be
# imported after it (isort must not merge this line into the one above).
from physkan.strategies import augmented  # isort: skip

__all__ = ["augmented", "conservation", "lagrangian", "metric", "regression"]
