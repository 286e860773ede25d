"""KAN-guided recursive decomposition (see :mod:`.recurse`): surrogate, leaves, recursion."""

from physkan.strategies.decompose.recurse import decompose_regression

__all__ = ["decompose_regression"]
