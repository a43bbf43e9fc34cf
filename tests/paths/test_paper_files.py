"""The paper's method reads its models from the fit rule's files and fits nothing."""

from __future__ import annotations

import pandas as pd
import pytest
from paths_toy import toy_records

from greenpath.modeling.paper_savings import fit_paper_savings
from greenpath.modeling.workflow import fit_study
from greenpath.paths.paper import paper_method
from greenpath.paths.run import load_paper_models, run_paths
from greenpath.paths.tree import build_trees
from greenpath.records import build_trajectories
from greenpath.records.aggregate import write_trajectories

DATASETS = ("a", "b", "c")


@pytest.fixture
def toy(tmp_path):
    """Three 6-epoch trees with different trunks, their trajectories file and the fit
    rule's paper_savings model files (one per held-out dataset)."""
    recs = pd.concat(
        [
            toy_records(d, trunk=(0.2 + i / 50, 0.4, 0.5 - i / 40, 0.55, 0.58 + i / 60, 0.6))
            for i, d in enumerate(DATASETS)
        ],
        ignore_index=True,
    )
    traj = build_trajectories(recs)
    path = write_trajectories(traj, tmp_path / "trajectories.parquet")
    models = {
        d: fit_study(path, "paper_savings", tmp_path / f"without_{d}.json", held_out=d)
        for d in DATASETS
    }
    return traj, path, models


def test_loaded_models_give_the_in_memory_choices(toy):
    traj, _, files = toy
    trees = build_trees(traj)
    from_files = paper_method(trees, load_paper_models(files))
    in_memory = paper_method(trees, {d: fit_paper_savings(traj, d) for d in DATASETS})
    assert from_files == in_memory and len(from_files) == 3


def test_models_must_be_leave_one_dataset_out(toy):
    traj, _, files = toy
    trees = build_trees(traj)
    models = load_paper_models(files)
    with pytest.raises(ValueError, match="fitted on 'a'"):
        paper_method(trees, {**models, "a": fit_paper_savings(traj)})
    with pytest.raises(ValueError, match="no model fitted without 'c'.*--held-out c"):
        paper_method(trees, {d: models[d] for d in ("a", "b")})


def test_run_paths_reads_trajectories_and_model_files(toy, tmp_path):
    from greenpath.modeling.base import get_predictor
    from greenpath.modeling.io import save

    traj, path, files = toy
    model = save(get_predictor("persistence").fit(traj), tmp_path / "persistence.json")
    doc = run_paths(model, path, paper_models=files)
    assert doc["strategies"]["paper"]["pooled"]["all"]["n_trees"] == 3
    assert doc["paper_models"] == {d: str(f) for d, f in files.items()}
    assert doc["trajectories"] == [str(path)]
    skipped = run_paths(model, path)
    assert "paper" not in skipped["strategies"]
    assert "no paper_savings models" in skipped["paper_skipped"]
    with pytest.raises(ValueError, match="not a trajectories table"):
        build_trees(toy_records())
