"""The greenpath CLI: import-eatit, fit, evaluate (model and --lodo), paths."""

from __future__ import annotations

import json

import pytest
from test_eatit import _write_fixture

from greenpath.cli import COMMANDS, main
from greenpath.records import read_records, write_records


def test_subcommands_registered():
    assert {"import-eatit", "fit", "evaluate", "paths"} <= set(COMMANDS)


def test_import_fit_evaluate(tmp_path, toy_records):
    (tmp_path / "src").mkdir()
    src = _write_fixture(tmp_path / "src")
    out = tmp_path / "eatit.parquet"
    assert main(["import-eatit", "--src", str(src), "--out", str(out)]) == 0
    assert len(read_records(out)) == 6
    rec = write_records(toy_records, tmp_path / "toy.parquet")
    model = tmp_path / "m.json"
    assert (
        main(["fit", "--records", str(rec), "--predictor", "persistence", "--out", str(model)]) == 0
    )
    assert json.loads(model.read_text())["name"] == "persistence"
    ev = tmp_path / "ev.json"
    assert main(["evaluate", "--model", str(model), "--records", str(rec), "--out", str(ev)]) == 0
    res = json.loads(ev.read_text())
    assert res["in_sample_datasets"] == ["a", "b", "c", "d"]
    ev2 = tmp_path / "ev2.json"
    argv = [
        "evaluate",
        "--lodo",
        "--predictor",
        "carbontracker",
        "--records",
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
            "--records",
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
    rec = write_records(toy_records, tmp_path / "toy.parquet")
    model = tmp_path / "m.json"
    assert (
        main(["fit", "--records", str(rec), "--predictor", "greenpath", "--out", str(model)]) == 0
    )
    out = tmp_path / "paths.json"
    argv = [
        "paths",
        "--model",
        str(model),
        "--records",
        str(rec),
        "--objective",
        "constrained",
        "--tolerance",
        "0.01",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert out.is_file()
