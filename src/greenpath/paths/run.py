"""Run every path strategy on measured trajectories and write the figures as JSON.

Reads the study's ``trajectories.parquet`` and the fitted models (the fit rule's files);
nothing is fitted here.

Called by the ``greenpath paths`` command (``greenpath.cli``) and the Snakemake rule.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from greenpath.modeling import paper_savings
from greenpath.modeling.eatit import flag_chance_level
from greenpath.modeling.workflow import read_trajectories
from greenpath.paths import strategies as S
from greenpath.paths.objectives import DEFAULT_TOLERANCE, get_objective
from greenpath.paths.paper import paper_method
from greenpath.paths.planner import (
    Margin,
    PredictorLike,
    forecast_tree,
    margin_grid,
    planner_lodo,
    planner_lodo_conformal,
    planner_lodo_conformal_nested,
)
from greenpath.paths.report import outcome_table, summarize
from greenpath.paths.tree import Tree, build_trees
from greenpath.records import json_ready, write_json

log = logging.getLogger(__name__)

#: Patience values of the early-stopping baselines.
PATIENCES: tuple[int, ...] = (3, 5)


def load_predictor(model_path: Path) -> Any:
    """Load a fitted predictor from its JSON file (``greenpath.modeling.io``).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a predictor JSON.
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise FileNotFoundError(f"model file not found: {model_path}; run 'greenpath fit' first")
    try:
        from greenpath.modeling import io as model_io
    except ImportError:  # pragma: no cover - modeling is part of the package
        model_io = None
    load = getattr(model_io, "load_model", None) or getattr(model_io, "load", None)
    if load is not None:
        return load(model_path)
    from greenpath.modeling.base import predictor_class

    d = json.loads(model_path.read_text())
    if not isinstance(d, dict) or "name" not in d:
        raise ValueError(f"{model_path} is not a predictor JSON (no 'name')")
    return predictor_class(d["name"]).from_json(d)


def predictors_for(
    model: Any, models: Mapping[str, Path] | None = None
) -> tuple[Callable[[str], PredictorLike], str]:
    """``dataset -> predictor`` for the planner, and how it was obtained (no fitting here).

    Args:
        model: the loaded predictor, used for a dataset without its own model.
        models: held-out dataset -> JSON of the predictor fitted without that dataset
            (the workflow's ``fit`` rule outputs ``models/<predictor>/without_<d>.json``).
    """
    if not models:
        return (lambda _ds: model), "as loaded (in-sample for datasets it was trained on)"
    loaded = {str(d): load_predictor(Path(p)) for d, p in models.items()}
    return (
        lambda ds: loaded.get(ds, model)
    ), "leave-one-dataset-out models read from the fit rule's outputs"


def load_paper_models(
    models: Mapping[str, Path] | None,
) -> dict[str, paper_savings.PaperSavingsModel] | None:
    """Held-out dataset -> the paper's savings model fitted without it, read from its file
    (``models/paper_savings/without_<dataset>.json``); ``None`` when none is given.

    Raises:
        FileNotFoundError, ValueError: see :func:`greenpath.modeling.paper_savings.load`.
    """
    if not models:
        return None
    return {str(d): paper_savings.load(Path(p)) for d, p in models.items()}


#: Strategy name -> (description, tree key -> the strategy's choice on that tree).
Strategies = dict[str, tuple[str, Mapping]]

#: How the pooled figures of every strategy are computed (written into the JSON).
POOLING: dict[str, str] = {
    "energy_saved_pct_mean": "mean over trees of (1 - E_path / E_full_trunk) x 100",
    "energy_saved_pct_ratio": "(1 - sum E_path / sum E_full_trunk) x 100",
    "accuracy_change_pts_mean": "mean over trees of (acc_path - acc_full_trunk) x 100",
    "violations": "trees with acc_path < acc_full_trunk - tolerance",
    "regret_mean": "mean regret vs the oracle (unit in objective.regret_unit)",
}

#: Unit of the regret per objective.
REGRET_UNIT: dict[str, str] = {
    "constrained": "percentage points of the full trunk's energy",
    "score": "% of the oracle's score",
    "weighted": "accuracy points",
}


def run_strategies(
    trees: Sequence[Tree],
    objective_name: str = "constrained",
    tolerance: float = DEFAULT_TOLERANCE,
    lam: float | None = None,
    *,
    predictor_for: Callable[[str], PredictorLike] | None = None,
    paper_models: Mapping[str, paper_savings.PaperSavingsModel] | None = None,
    flagged: set[str] | None = None,
    fixed_stops: Sequence[int] | None = None,
    grid: Sequence[Margin] | None = None,
    first_epoch: int = 0,
) -> dict[str, Any]:
    """Every strategy on ``trees``; returns the figures (see ``docs/paths.md``).

    Args:
        trees: measured trees (:func:`~greenpath.paths.tree.build_trees`).
        objective_name, tolerance, lam: the objective (see :mod:`greenpath.paths.objectives`).
        predictor_for: ``dataset -> predictor`` for the planner; ``None`` skips it.
        paper_models: held-out dataset -> the paper's savings model fitted without it
            (:func:`load_paper_models`); ``None`` skips the paper's method.
        flagged: chance-level datasets, reported separately.
        fixed_stops: stop epochs of the fixed-stop baselines (default: every epoch
            1..E-1 of the first tree).
        grid: safety margins for the planner's calibration.
        first_epoch: the per-epoch planner commits on the trunk from this epoch on.
    """
    obj = get_objective(objective_name, tolerance, lam)
    strategies = _hindsight_strategies(trees, obj)
    extra: dict[str, Any] = {}
    paper, extra_paper = _paper_strategy(trees, paper_models)
    strategies.update(paper)
    extra.update(extra_paper)
    if predictor_for is not None:
        planners, extra_planners = _planner_strategies(trees, predictor_for, obj, grid, first_epoch)
        strategies.update(planners)
        extra.update(extra_planners)
    strategies.update(_baseline_strategies(trees, fixed_stops))
    return _figures(trees, strategies, obj, set(flagged or ()), extra)


def _hindsight_strategies(trees: Sequence[Tree], obj: Any) -> Strategies:
    """The oracles over the candidate paths and over every stop epoch, and the full trunk."""
    return {
        "oracle": (
            "best candidate path of the measured tree (hindsight)",
            {t.key: S.oracle(t, obj) for t in trees},
        ),
        "oracle_every_epoch": (
            "best path of the measured tree stopped at any epoch (hindsight)",
            {t.key: S.oracle(t, obj, every_epoch=True) for t in trees},
        ),
        "full_trunk": (
            "the reference: trunk to the last epoch",
            {t.key: S.full_trunk(t) for t in trees},
        ),
    }


def _paper_strategy(
    trees: Sequence[Tree], paper_models: Mapping[str, paper_savings.PaperSavingsModel] | None
) -> tuple[Strategies, dict[str, str]]:
    """The paper's savings simulation, or (as ``paper_skipped``) why it cannot run."""
    if len({t.dataset for t in trees}) < 2:
        return {}, {"paper_skipped": "needs >= 2 datasets (leave-one-dataset-out fit)"}
    if max(t.last_epoch for t in trees) < paper_savings.FIRST_EPOCH:
        why = f"runs shorter than {paper_savings.FIRST_EPOCH} epochs, the simulation's first"
        return {}, {"paper_skipped": why}
    if paper_models is None:
        why = (
            "no paper_savings models given (the fit rule's models/paper_savings/"
            "without_<dataset>.json)"
        )
        return {}, {"paper_skipped": why}
    desc = (
        "the paper's savings simulation (analysis_rq2.Rmd 'Energy savings'), leave-one-dataset-out"
    )
    return {"paper": (desc, paper_method(trees, paper_models))}, {}


def _planner_strategies(
    trees: Sequence[Tree],
    predictor_for: Callable[[str], PredictorLike],
    obj: Any,
    grid: Sequence[Margin] | None,
    first_epoch: int,
) -> tuple[Strategies, dict[str, Any]]:
    """greenpath's three planners on forecasts of every tree (made once, shared), and
    their calibration details (``<name>_margins``)."""
    every = {t.key: forecast_tree(t, predictor_for(t.dataset), range(t.last_epoch)) for t in trees}
    fcs = {t.key: {d: every[t.key][d] for d in t.decision_epochs} for t in trees}
    choices, details = planner_lodo(trees, predictor_for, obj, grid, forecasts=fcs)
    c_choices, c_details = planner_lodo_conformal(trees, predictor_for, obj, forecasts=fcs)
    e_choices, e_details = planner_lodo_conformal_nested(
        trees, predictor_for, obj, forecasts=every, first_epoch=first_epoch
    )
    strategies: Strategies = {
        "planner": (
            "greenpath planner: forecast every option at each decision epoch, safety "
            "margin calibrated leave-one-dataset-out",
            choices,
        ),
        "planner_conformal": (
            "greenpath planner with per-plan-kind conformal margins (20 % lower quantile "
            "of the other datasets' forecast residuals), leave-one-dataset-out",
            c_choices,
        ),
        "planner_every_epoch": (
            "greenpath planner deciding after every epoch (continue, stop now, switch where "
            "the grid has the branch), conformal margins per plan kind and epoch bucket, "
            "level chosen leave-one-dataset-out (nested)",
            e_choices,
        ),
    }
    extra = {
        "planner_margins": details,
        "planner_conformal_margins": c_details,
        "planner_every_epoch_margins": e_details,
    }
    return strategies, extra


def _baseline_strategies(trees: Sequence[Tree], fixed_stops: Sequence[int] | None) -> Strategies:
    """Patience early stopping (restore-best and stop-epoch accuracy) and fixed stops."""
    strategies: Strategies = {}
    for p in PATIENCES:
        strategies[f"patience_{p}"] = (
            f"early stopping on the trunk, patience {p}, restore best (reported accuracy "
            "is the best epoch's)",
            {t.key: S.patience_stopping(t, p, restore_best=True) for t in trees},
        )
        strategies[f"patience_{p}_last"] = (
            f"early stopping on the trunk, patience {p}, no restore (reported accuracy is "
            "the stop epoch's)",
            {t.key: S.patience_stopping(t, p, restore_best=False) for t in trees},
        )
    if fixed_stops is None:
        fixed_stops = list(range(1, trees[0].last_epoch))
    for k in fixed_stops:
        strategies[f"stop_{k}"] = (
            f"stop the trunk after epoch {k}",
            {t.key: S.fixed_stop(t, k) for t in trees},
        )
    return strategies


def _figures(
    trees: Sequence[Tree],
    strategies: Strategies,
    obj: Any,
    flagged: set[str],
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """Each strategy's outcome table pooled (:func:`summarize`), plus the run's context."""
    oracles = strategies["oracle"][1]
    result: dict[str, Any] = {"strategies": {}}
    for name, (desc, choices) in strategies.items():
        table = outcome_table(trees, choices, obj, oracles, flagged)
        result["strategies"][name] = {"description": desc, **summarize(table)}
    result["objective"] = {**obj.describe(), "regret_unit": REGRET_UNIT[obj.name]}
    result["flagged_datasets"] = sorted(flagged)
    result["n_trees"] = len(trees)
    result["decision_epochs"] = sorted({d for t in trees for d in t.decision_epochs})
    result["pooling"] = dict(POOLING)
    result.update(extra)
    return result


def run_paths(
    model_path: Path,
    trajectories: Path | Sequence[Path],
    objective: str = "constrained",
    tolerance: float = DEFAULT_TOLERANCE,
    lam: float | None = None,
    out: Path | None = None,
    *,
    decision_epochs: Sequence[int] | None = None,
    fixed_stops: Sequence[int] | None = None,
    models: Mapping[str, Path] | None = None,
    paper_models: Mapping[str, Path] | None = None,
    grid: Sequence[Margin] | None = None,
) -> dict[str, Any]:
    """Load the models and trajectories, run every strategy, write the figures as JSON.

    Args:
        model_path: fitted predictor JSON (``greenpath fit``).
        trajectories: ``trajectories.parquet`` file(s) (the aggregate rule's output).
        objective: ``score``, ``constrained`` or ``weighted``.
        tolerance: accuracy tolerance, fraction (0.01 = 1 point).
        lam: weight of ``weighted`` (accuracy per kWh).
        out: JSON file to write (atomically); ``None`` writes nothing.
        decision_epochs: override the trees' decision epochs (default: 0 and every
            intervention epoch of the branches).
        fixed_stops: epochs of the fixed-stop baselines.
        models: held-out dataset -> model fitted without it, for the planner (see
            :func:`predictors_for`); ``None`` uses ``model_path``'s model for every dataset.
        paper_models: held-out dataset -> the paper's savings model file fitted without it
            (``greenpath fit --predictor paper_savings --held-out D``); ``None`` skips the
            paper's method.
        grid: safety margins for calibration (default :func:`margin_grid`).

    Returns:
        The figures written (JSON-ready dict).

    Raises:
        FileNotFoundError: a model or the trajectories missing.
        ValueError: bad objective arguments, records instead of trajectories, or
            trajectories without a trunk.
    """
    traj = read_trajectories(trajectories)
    trees = build_trees(traj, decision_epochs)
    model = load_predictor(Path(model_path))
    predictor_for, how = predictors_for(model, models)
    result = run_strategies(
        trees,
        objective,
        tolerance,
        lam,
        predictor_for=predictor_for,
        paper_models=load_paper_models(paper_models),
        flagged=flag_chance_level(traj),
        fixed_stops=fixed_stops,
        grid=grid if grid is not None else margin_grid(),
    )
    result["predictor"] = {
        "name": getattr(model, "name", type(model).__name__),
        "model_path": str(model_path),
        "fit": how,
    }
    files = [trajectories] if isinstance(trajectories, (str, Path)) else trajectories
    result["trajectories"] = [str(p) for p in files]
    if paper_models:
        result["paper_models"] = {str(d): str(p) for d, p in paper_models.items()}
    result = json_ready(result)
    if out is not None:
        write_json(result, Path(out))
    return result


def strategies_table(doc: Mapping[str, Any]) -> pd.DataFrame:
    """One row per (strategy, pool): energy saved, accuracy change, violations, regret."""
    rows = []
    for name, s in doc["strategies"].items():
        for pool, fig in s.get("pooled", {}).items():
            row = {"strategy": name, "pool": pool}
            row.update({k: v for k, v in fig.items() if not isinstance(v, (dict, list))})
            rows.append(row)
    return pd.DataFrame(rows)


def paths_study(
    model: Path,
    models: Mapping[str, Path],
    trajectories: Path,
    out_json: Path,
    out_table: Path,
    *,
    paper_models: Mapping[str, Path] | None = None,
    objective: str,
    tolerance: float,
    lam: float | None,
) -> dict[str, Any]:
    """The workflow's paths step: every strategy with the fitted leave-one-dataset-out
    models (the planner's and the paper's); writes the JSON and a CSV + Markdown table
    (``greenpath.modeling.workflow``)."""
    from greenpath.modeling.workflow import write_table

    doc = run_paths(
        Path(model), Path(trajectories), objective, tolerance, lam, Path(out_json),
        models=models, paper_models=paper_models,
    )  # fmt: skip
    write_table(strategies_table(doc), out_table)
    return doc


__all__ = [
    "flag_chance_level",
    "load_paper_models",
    "load_predictor",
    "paths_study",
    "predictors_for",
    "run_paths",
    "run_strategies",
]
