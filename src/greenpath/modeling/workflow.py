"""The modeling stage as the workflow runs it: evaluate, fit, choose paths, write tables.

Each function reads record-schema Parquet files and writes JSON (atomically) plus a
Markdown/CSV table; ``scripts/modeling.py`` calls them from the Snakemake rules in
``workflow/rules/model.smk`` or from the command line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from greenpath.records import atomic_path, write_json

log = logging.getLogger(__name__)


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` as CSV and, beside it, as a Markdown table (``.md``), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    with atomic_path(path.with_suffix(".md")) as tmp:
        tmp.write_text(df.to_markdown(index=False, floatfmt=".2f") + "\n")
    return path


def evaluation_table(results: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per (predictor, pool): one-step MAPE (live history) and multi-step errors.

    Multi-step figures are those of "warm" decisions (intervention epoch >= 1, where the
    run has a history); the JSON also holds the cold-start ones (epoch 0).

    Args:
        results: predictor name -> ``evaluate_lodo`` document.
    """
    rows = []
    for name, doc in results.items():
        for pool, figures in doc["pooled"].items():
            one_step = figures.get("one_step", {})
            one = one_step.get("live", {})
            multi = figures.get("multi_step", {}).get("warm", {})
            rows.append(
                {
                    "predictor": name,
                    "pool": pool,
                    "one_step_rows": one_step.get("n"),
                    "acc_mape_pct": one.get("acc_mape_pct"),
                    "energy_mape_pct": one.get("energy_mape_pct"),
                    "score_mape_pct": one.get("score_mape_pct"),
                    "decisions": multi.get("n"),
                    "final_acc_err_points": multi.get("final_acc_mae_points"),
                    "cum_energy_mape_pct": multi.get("cum_energy_mape_pct"),
                }
            )
    return pd.DataFrame(rows)


def read_trajectories(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> pd.DataFrame:
    """Read one or more ``trajectories.parquet`` files (the aggregate or import_eatit rule's
    output), concatenated.

    Raises:
        FileNotFoundError: a file is missing (says which rule writes it).
    """
    files = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(
                f"trajectories file not found: {f}; the workflow's aggregate rule (or "
                "import_eatit) writes results/<study>/trajectories.parquet"
            )
    frames = [pd.read_parquet(f) for f in files]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def eatit_datasets(src: str | os.PathLike[str]) -> list[str]:
    """Datasets of the EAT-IT folder ``src`` as the importer names them (sorted).

    Raises:
        FileNotFoundError: ``src/history.csv`` is missing.
    """
    from greenpath.modeling.eatit import DATASET_RENAMES

    names = pd.read_csv(Path(src) / "history.csv", usecols=["dataset"])["dataset"].unique()
    return sorted({DATASET_RENAMES.get(str(n), str(n)) for n in names})


def evaluate_study(
    trajectories: str | os.PathLike[str],
    models: dict[str, dict[str, str | os.PathLike[str]]],
    out_json: str | os.PathLike[str],
    out_table: str | os.PathLike[str],
    *,
    min_epoch: int | None = None,
) -> dict[str, Any]:
    """Leave-one-dataset-out evaluation of every predictor with its fitted models.

    Args:
        trajectories: the study's ``trajectories.parquet``.
        models: predictor -> held-out dataset -> model JSON fitted without that dataset
            (the ``fit`` rule's outputs; nothing is fitted here).

    ``min_epoch`` defaults to the paper's row selection (epochs > 6) when the study has
    more than 10 epochs, and to epoch 2 otherwise (short runs would keep too few rows).
    """
    from greenpath.modeling.evaluate import PAPER_MIN_EPOCH, evaluate_lodo_models
    from greenpath.modeling.io import load

    traj = read_trajectories(trajectories)
    if traj["dataset"].nunique() < 2:
        raise ValueError("leave-one-dataset-out needs at least 2 datasets in the records")
    if min_epoch is None:
        min_epoch = PAPER_MIN_EPOCH if traj["epoch"].max() > 10 else 2
    results = {}
    for name, files in models.items():
        fitted = {d: load(f) for d, f in files.items()}
        results[name] = evaluate_lodo_models(traj, fitted, min_epoch=min_epoch, tables=True)
        log.info("evaluated %s in %.1f s", name, results[name]["seconds"])
    write_json(results, out_json)
    write_table(evaluation_table(results), out_table)
    return results


def fit_study(
    trajectories: str | os.PathLike[str],
    predictor: str,
    out: str | os.PathLike[str],
    *,
    held_out: str | None = None,
) -> Path:
    """Fit ``predictor`` on the study's trajectories without ``held_out`` (``None``: on
    every dataset) and save it as JSON.

    ``predictor`` is a registered predictor (``greenpath.modeling.base``) or
    ``paper_savings``, the model of the paper's savings simulation
    (``greenpath.modeling.paper_savings``).
    """
    from greenpath.modeling import paper_savings

    traj = read_trajectories(trajectories)
    if predictor == paper_savings.NAME:
        return paper_savings.save(paper_savings.fit_paper_savings(traj, held_out), out)
    from greenpath.modeling.base import get_predictor
    from greenpath.modeling.evaluate import lodo_training_set
    from greenpath.modeling.io import save

    return save(get_predictor(predictor).fit(lodo_training_set(traj, held_out)), out)
