"""The live energy-aware controller: called by the training loop at epoch end.

- :class:`~greenpath.control.controller.Controller`: forecasts every option at each
  decision epoch with a fitted predictor and returns the best action under an objective.
- :class:`~greenpath.control.patience.PatienceStopping`: patience early stopping
  with the same callback API.
- :func:`~greenpath.control.run.train_controlled`, :func:`~greenpath.control.run.replay_tree`.
- :func:`~greenpath.control.closed_loop.closed_loop`: leave-one-dataset-out evaluation.

See ``docs/control.md``. The engine calls these; they never import the engine at module
level.
"""

from greenpath.control.controller import ACTIONS, Controller, Decision, PlanForecast
from greenpath.control.log import (
    DECISION_SCHEMA,
    decisions_path,
    read_decisions,
    write_decisions,
)
from greenpath.control.patience import PatienceStopping
from greenpath.control.run import RunResult, replay_tree, train_controlled

__all__ = [
    "ACTIONS",
    "DECISION_SCHEMA",
    "Controller",
    "Decision",
    "PatienceStopping",
    "PlanForecast",
    "RunResult",
    "decisions_path",
    "read_decisions",
    "replay_tree",
    "train_controlled",
    "write_decisions",
]
