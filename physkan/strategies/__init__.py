"""Discovery strategies, one module per problem type, and their registry.

:mod:`physkan.strategies.base` holds :class:`Discovery`, :data:`Reporter` and the registry
:data:`STRATEGIES` (problem type -> strategy); the built-in strategies are listed once there
(:data:`BUILTIN_STRATEGIES`) and their modules are imported on first use. Strategy modules
never import :mod:`physkan.discover` (the pipeline sits above them).
"""

from physkan.strategies.base import (
    BUILTIN_STRATEGIES,
    STRATEGIES,
    Discovery,
    Reporter,
    Strategy,
    get_strategy,
    register_strategy,
)

__all__ = ["BUILTIN_STRATEGIES", "STRATEGIES", "Discovery", "Reporter", "Strategy",
           "get_strategy", "register_strategy"]  # fmt: skip
