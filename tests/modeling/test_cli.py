"""The greenpath CLI: import-eatit, fit, evaluate (model and --lodo), paths."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_eatit import _write_fixture

from greenpath.cli import COMMANDS, main
from greenpath.records import build_trajectories, read_records
from greenpath.records.aggregate import write_trajectories


def test_subcommands_registered():
    assert {"import-eatit", "fit", "evaluate", "paths"} <= set(COMMANDS)


def test_import_fit_evaluate(tmp_path, toy_records):
    (tmp_path / "src").mkdir()
    src = _write_fixture(tmp_path / "src")
    out, eatit_traj = tmp_path / "eatit.parquet", tmp_path / "eatit_traj.parquet"
    argv = ["import-eatit", "--src", str(src), "--out", str(out), "--trajectories", str(eatit_traj)]
    assert main(argv) == 0
    assert len(read_records(out)) == 6
    assert build_trajectories(read_records(out)).equals(pd.read_parquet(eatit_traj))
    rec = write_trajectories(build_trajectories(toy_records), tmp_path / "toy.parquet")
    model = tmp_path / "m.json"
    argv = ["fit", "--trajectories", str(rec), "--predictor", "persistence", "--out", str(model)]
    assert main(argv) == 0
    assert json.loads(model.read_text())["name"] == "persistence"
    ev = tmp_path / "ev.json"
    argv = ["evaluate", "--model", str(model), "--trajectories", str(rec), "--out", str(ev)]
    assert main(argv) == 0
    res = json.loads(ev.read_text())
    assert res["in_sample_datasets"] == ["a", "b", "c", "d"]
    ev2 = tmp_path / "ev2.json"
    argv = [
        "evaluate",
        "--lodo",
        "--predictor",
        "carbontracker",
        "--trajectories",
        str(rec),
        "--out",
        str(ev2),
    ]
    assert main(argv) == 0
    assert json.loads(ev2.read_text())["mode"] == "leave-one-dataset-out"


def test_errors_are_reported(tmp_path, capsys):
    rc = main(
        [
            "fit",
            "--trajectories",
            str(tmp_path / "none.parquet"),
            "--predictor",
            "paper",
            "--out",
            str(tmp_path / "m.json"),
        ]
    )
    assert rc == 2
    assert "not found" in capsys.readouterr().err


def test_paths_subcommand(tmp_path, toy_records):
    paths = pytest.importorskip("greenpath.paths")
    if not hasattr(paths, "run_paths"):
        pytest.skip("greenpath.paths.run_paths not written yet (other helper)")
    rec = write_trajectories(build_trajectories(toy_records), tmp_path / "toy.parquet")
    model = tmp_path / "m.json"
    argv = ["fit", "--trajectories", str(rec), "--predictor", "greenpath", "--out", str(model)]
    assert main(argv) == 0
    paper = {}
    for d in ("a", "b", "c", "d"):
        paper[d] = tmp_path / f"paper_without_{d}.json"
        argv = ["fit", "--trajectories", str(rec), "--predictor", "paper_savings"]
        assert main([*argv, "--held-out", d, "--out", str(paper[d])]) == 0
    out = tmp_path / "paths.json"
    argv = [
        "paths",
        "--model",
        str(model),
        "--trajectories",
        str(rec),
        "--objective",
        "constrained",
        "--tolerance",
        "0.01",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert "paper" not in json.loads(out.read_text())["strategies"]  # no paper models given
    argv += ["--paper-models", *(f"{d}={p}" for d, p in paper.items())]
    assert main(argv) == 0
    assert json.loads(out.read_text())["strategies"]["paper"]["pooled"]["all"]["n_trees"] == 4
