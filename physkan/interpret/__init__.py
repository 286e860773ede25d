"""Interpretability of KANs: attribution, pruning, modularity, trees, hypothesis testing,
continual learning and plots (KAN 2.0, Sec. 4). Functions, not network methods.

Conventions: every function that takes data takes the model first and the samples ``x
(N, n_in)`` second; ``variables`` are always input *names* (``model.variables``, default
``x0..x{n-1}``).

Continual learning (splines are local, so a KAN trained region by region keeps what it
learned; an MLP forgets)::

    from physkan.interpret import kan_for_peaks, mlp_for_peaks, peak_tasks, run_continual

    tasks = peak_tasks(n_peaks=5)                      # 5 regions of [-1, 1], one at a time
    kan = run_continual(kan_for_peaks(), tasks, optimizer="lbfgs", steps=30)
    mlp = run_continual(mlp_for_peaks(), tasks, steps=150)
    kan.errors[-1], mlp.errors[-1]                     # RMSE per region after the last phase
"""

from physkan.interpret.attribution import Attribution, attribution
from physkan.interpret.continual import (
    ContinualResult,
    gaussian_peaks,
    kan_for_peaks,
    mlp_for_peaks,
    peak_tasks,
    run_continual,
)
from physkan.interpret.history import Checkpoint, History, checkpoint, history_of, rewind
from physkan.interpret.modularity import (
    SeparabilityResult,
    general_separability,
    hessian,
    interaction_matrix,
    separability,
    symmetry_score,
    test_general_separability,
    test_separability,
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
from physkan.interpret.symmetry import find_symmetries, test_symmetry
from physkan.interpret.tree import TreeNode, build_tree, plot_tree

__all__ = [
    "Attribution",
    "Checkpoint",
    "ContinualResult",
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
    "gaussian_peaks",
    "general_separability",
    "hessian",
    "history_of",
    "interaction_matrix",
    "kan_for_peaks",
    "mlp_for_peaks",
    "peak_tasks",
    "plot",
    "plot_tree",
    "prune",
    "prune_edge",
    "prune_input",
    "prune_node",
    "rewind",
    "run_continual",
    "select_nodes",
    "separability",
    "sparse_init",
    "symmetry_score",
    "test_general_separability",
    "test_separability",
    "test_symmetry",
]
