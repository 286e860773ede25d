"""Interpretability of KANs: attribution, pruning, modularity, trees, hypothesis testing,
continual learning and plots (KAN 2.0, Sec. 4). Functions, not network methods."""

from physkan.interpret.attribution import Attribution, attribution
from physkan.interpret.history import Checkpoint, History, checkpoint, history_of, rewind
from physkan.interpret.modularity import (
    SeparabilityResult,
    find_symmetries,
    general_separability,
    hessian,
    interaction_matrix,
    separability,
    symmetry_score,
    test_general_separability,
    test_separability,
    test_symmetry,
)
from physkan.interpret.plot import plot
from physkan.interpret.prune import (
    drop_dead_nodes,
    prune,
    prune_edge,
    prune_input,
    prune_node,
    select_nodes,
)
from physkan.interpret.session import Record, Session
from physkan.interpret.structure import auto_swap, connection_cost, constrain_module, sparse_init
from physkan.interpret.tree import TreeNode, build_tree, plot_tree

__all__ = [
    "Attribution",
    "Checkpoint",
    "History",
    "Record",
    "SeparabilityResult",
    "Session",
    "TreeNode",
    "attribution",
    "auto_swap",
    "build_tree",
    "checkpoint",
    "connection_cost",
    "constrain_module",
    "drop_dead_nodes",
    "find_symmetries",
    "general_separability",
    "hessian",
    "history_of",
    "interaction_matrix",
    "plot",
    "plot_tree",
    "prune",
    "prune_edge",
    "prune_input",
    "prune_node",
    "rewind",
    "select_nodes",
    "separability",
    "sparse_init",
    "symmetry_score",
    "test_general_separability",
    "test_separability",
    "test_symmetry",
]
