"""`greenpath train` end to end on a tiny prepared dataset (patience only, no predictor)."""

from __future__ import annotations

import yaml
from training_helpers import REPO, digits_dataset

from greenpath.cli import main
from greenpath.data.prepared import save_prepared
from greenpath.records import read_records


def test_cli_train_patience_summary(tmp_path, capsys):
    npz = save_prepared(digits_dataset(), tmp_path / "digits.npz")
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    raw["model"]["width"] = 8
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    rc = main(["train", "--config", str(cfg), "--dataset", "digits", "--dataset-path", str(npz),
               "--epochs", "2", "--patience", "1", "--out", str(tmp_path / "out")])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert "energy used:" in out and "final validation accuracy:" in out
    rec = read_records(tmp_path / "out" / "records.parquet")
    assert rec["epoch"].tolist()[0] == 1 and len(rec) <= 2
    # neither a predictor nor patience: a clear error, exit status 2
    rc = main(["train", "--config", str(cfg), "--dataset", "digits", "--dataset-path", str(npz),
               "--out", str(tmp_path / "o2")])  # fmt: skip
    assert rc == 2 and "--predictor" in capsys.readouterr().err


def test_cli_train_commits_at_epoch_0_only_with_cold_start(tmp_path, monkeypatch):
    """Found by a fresh-user trial: `greenpath train --predictor` committed at epoch 0 on a
    cold forecast (quant, then stop at 3), although the planner never does by default
    (cold forecasts miss the final accuracy of an unseen dataset by ~16 points). The
    controller now gets ``cold_start=False`` unless ``--cold-start`` is given."""
    import greenpath.control as control_pkg

    npz = save_prepared(digits_dataset(), tmp_path / "digits.npz")
    seen = []

    class Captured(Exception):
        pass

    def fake_controller(*args, margin, **kwargs):
        seen.append(margin.cold_start)
        raise Captured

    monkeypatch.setattr(control_pkg, "Controller", fake_controller)
    base = ["train", "--config", str(REPO / "config" / "config.yaml"), "--dataset", "digits",
            "--dataset-path", str(npz), "--predictor", str(tmp_path / "model.json"),
            "--out", str(tmp_path / "out")]  # fmt: skip
    for extra in ([], ["--cold-start"]):
        try:
            main(base + extra)
        except Captured:
            pass
    assert seen == [False, True]
