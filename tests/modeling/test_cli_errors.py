"""The greenpath command line refuses bad arguments early, naming the flag, in one format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from greenpath.cli import build_parser, main, predictor_parameters
from greenpath.records import build_trajectories
from greenpath.records.aggregate import write_trajectories

EATIT = Path(__file__).resolve().parents[2].parent / "shared" / "eatit"


def test_top_level_help_is_plain_text(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "``" not in out and ":data:" not in out and ":func:" not in out
    assert "energy of neural-network training" in out


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_train_epochs_must_be_positive(value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset", "digits", "--epochs", value, "--out", "x"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "greenpath train: error: argument --epochs:" in err and value in err


def test_trajectories_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in ("fit", "evaluate", "paths"):
        traj = next(a for a in sub.choices[name]._actions if a.dest == "trajectories")
        assert traj.help and "Parquet" in traj.help, name


def test_evaluate_without_model_has_the_error_prefix(tmp_path, capsys):
    rc = main(["evaluate", "--trajectories", str(tmp_path / "t.parquet"), "--out", "e.json"])
    assert rc == 2
    assert capsys.readouterr().err.startswith("greenpath evaluate: error: evaluate needs --model")


def test_params_unknown_keys_are_refused(tmp_path, capsys, toy_records):
    traj = write_trajectories(build_trajectories(toy_records), tmp_path / "toy.parquet")
    out = tmp_path / "m.json"
    base = ["fit", "--trajectories", str(traj), "--out", str(out)]
    rc = main([*base, "--predictor", "greenpath", "--params", '{"acc_model": "ols", "n_lvl": 3}'])
    assert rc == 2 and not out.exists()
    err = capsys.readouterr().err
    assert err.startswith("greenpath fit: error: --params:")
    assert "['n_lvl']" in err and "n_level" in err  # names the unknown and the known keys
    rc = main([*base, "--predictor", "persistence", "--params", '{"window": 3}'])
    assert rc == 2 and "takes no parameters" in capsys.readouterr().err
    assert main([*base, "--predictor", "paper", "--params", '{"energy_variant": "energy"}']) == 0
    assert json.loads(out.read_text())["params"] == {"energy_variant": "energy"}
    assert "energy_variant" in predictor_parameters("paper")


def test_zero_accuracy_flag_reaches_the_evaluation(tmp_path, toy_records, capsys):
    traj = write_trajectories(build_trajectories(toy_records), tmp_path / "toy.parquet")
    out = tmp_path / "ev.json"
    argv = ["evaluate", "--lodo", "--predictor", "persistence", "--trajectories", str(traj)]
    assert main([*argv, "--zero-accuracy", "0.01", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["protocol"]["zero_accuracy"] == 0.01
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--zero-accuracy", "1.5", "--out", str(out)])
    assert exc.value.code == 2
    assert "argument --zero-accuracy: 1.5 must be a fraction" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not EATIT.is_dir(), reason=f"the paper's EAT-IT data is not at {EATIT}")
def test_command_line_reproduces_the_papers_score_mape(tmp_path):
    """The authors read zero accuracies as 0.01: with that rule the paper's predictor has a
    leave-one-dataset-out one-step score MAPE of 11.2 % on the 9 EAT-IT datasets."""
    rec, traj = tmp_path / "eatit.parquet", tmp_path / "trajectories.parquet"
    argv = ["import-eatit", "--src", str(EATIT), "--out", str(rec), "--trajectories", str(traj)]
    assert main(argv) == 0
    out = tmp_path / "ev.json"
    argv = ["evaluate", "--lodo", "--predictor", "paper", "--trajectories", str(traj)]
    assert main([*argv, "--zero-accuracy", "0.01", "--out", str(out)]) == 0
    score = json.loads(out.read_text())["pooled"]["all"]["one_step"]["paper"]["score_mape_pct"]
    assert round(score, 1) == 11.2
