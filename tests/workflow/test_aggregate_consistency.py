"""`aggregate` refuses per-job records made by different settings (config hash, epochs)."""

from __future__ import annotations

import pandas as pd
import pytest

from greenpath.config import config_hash
from greenpath.records import RecordsError, write_records
from greenpath.records.aggregate import aggregate

CONFIG = {
    "study": "s",
    "data": {"image_size": 8},
    "model": {"name": "small_cnn"},
    "training": {"epochs": 3, "lr": 0.001},
    "energy": {},
}


def _settings(dataset, method=None, **training):
    out = {**CONFIG, "training": {**CONFIG["training"], **training}}
    out["datasets"] = {dataset: {}}
    if method:
        out["methods"] = {method: {}}
    return out


def _rows(dataset, method, k, epochs, settings):
    rows = [
        dict(study="s", dataset=dataset, seed=0, model="small_cnn", method=method,
             intervention_epoch=k, epoch=e, energy_total_j=1.0, duration_s=1.0,
             val_accuracy=0.5, status="ok", config_hash=config_hash(settings))
        for e in epochs
    ]  # fmt: skip
    return pd.DataFrame(rows)


def _tree(tmp_path, dataset, last=3, **training):
    """Files of one tree: trunk 1..last and a freeze branch at k=1."""
    trunk = write_records(
        _rows(dataset, "base", 0, range(1, last + 1), _settings(dataset, **training)),
        tmp_path / dataset / "base.parquet",
    )
    branch = write_records(
        _rows(dataset, "freeze", 1, range(2, last + 1), _settings(dataset, "freeze", **training)),
        tmp_path / dataset / "freeze_k1.parquet",
    )
    return [trunk, branch]


def test_consistent_records_aggregate(tmp_path):
    files = _tree(tmp_path, "a") + _tree(tmp_path, "b")
    records, traj = aggregate(files, tmp_path / "r.parquet", tmp_path / "t.parquet", epochs=3)
    assert len(records) == 2 * (3 + 2)
    trained = traj[traj["method"] != "stop"]
    assert set(trained.groupby(["dataset", "method"])["epoch"].max()) == {3}


def test_mixed_config_hashes_are_refused_naming_files_and_fix(tmp_path):
    files = _tree(tmp_path, "a") + _tree(tmp_path, "b", lr=0.01)
    with pytest.raises(RecordsError) as err:
        aggregate(files, tmp_path / "r.parquet", tmp_path / "t.parquet", epochs=3)
    msg = str(err.value)
    assert "config hashes (study-wide settings) disagree" in msg
    assert str(files[0]) in msg and str(files[2]) in msg
    assert "--forcerun" in msg
    assert not (tmp_path / "r.parquet").exists()


def test_mixed_epoch_counts_are_refused(tmp_path):
    files = _tree(tmp_path, "a", last=3) + _tree(tmp_path, "b", last=4, epochs=4)
    with pytest.raises(RecordsError, match=r"epoch counts \(expected 3\) disagree"):
        aggregate(files, tmp_path / "r.parquet", tmp_path / "t.parquet", epochs=3)


def test_config_hash_parts_cover_dataset_and_method_options():
    base = _settings("a", "freeze")
    other_ds = {**base, "datasets": {"a": {"subset": {"train": 10}}}}
    other_m = {**base, "methods": {"freeze": {"trainable": "last_block"}}}
    h, hd, hm = (config_hash(c).split(".") for c in (base, other_ds, other_m))
    assert h[0] == hd[0] == hm[0]
    assert h[1] != hd[1] and h[1] == hm[1]
    assert h[2] != hm[2] and h[2] == hd[2]
