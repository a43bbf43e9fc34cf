"""Training paths: objectives, the measured tree, strategies (oracle, the paper's method,
greenpath's planner, patience early stopping, fixed stops) and their figures.

See ``docs/paths.md``.
"""

from greenpath.paths.decide import Action, History, Margin, Plan, decide
from greenpath.paths.objectives import (
    DEFAULT_TOLERANCE,
    J_PER_KWH,
    OBJECTIVES,
    Objective,
    get_objective,
)
from greenpath.paths.paper import paper_method
from greenpath.paths.planner import (
    conformal_margins,
    forecast_tree,
    margin_grid,
    plan_residuals,
    plan_tree,
    plan_tree_every_epoch,
    planner_lodo,
    planner_lodo_conformal,
    planner_lodo_conformal_nested,
)
from greenpath.paths.report import outcome_table, summarize
from greenpath.paths.run import run_paths, run_strategies
from greenpath.paths.strategies import (
    Choice,
    fixed_stop,
    full_trunk,
    oracle,
    patience_stop_epoch,
    patience_stopping,
)
from greenpath.paths.tree import Tree, build_trees

__all__ = [
    "Action",
    "History",
    "Plan",
    "decide",
    "forecast_tree",
    "plan_tree_every_epoch",
    "planner_lodo_conformal_nested",
    "DEFAULT_TOLERANCE",
    "J_PER_KWH",
    "OBJECTIVES",
    "Choice",
    "Margin",
    "Objective",
    "Tree",
    "build_trees",
    "fixed_stop",
    "full_trunk",
    "get_objective",
    "conformal_margins",
    "margin_grid",
    "oracle",
    "outcome_table",
    "paper_method",
    "patience_stop_epoch",
    "patience_stopping",
    "plan_tree",
    "plan_residuals",
    "planner_lodo",
    "planner_lodo_conformal",
    "run_paths",
    "run_strategies",
    "summarize",
]
