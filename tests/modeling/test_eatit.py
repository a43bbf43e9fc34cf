"""EAT-IT importer: a hand-checked row, energy choices, chance-level flag."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from greenpath.modeling.eatit import flag_chance_level, import_eatit
from greenpath.records import build_trajectories, read_records, write_records

KEY = ["dataset", "mode", "intervention", "epoch"]


def _write_fixture(tmp_path):
    """Two datasets x (base epochs 1-2, freeze@1 epoch 2), EAT-IT's CSV layout."""
    keys = []
    for d in ("visual_domain_decathlon/aircraft", "voc"):
        keys += [(d, "base", 0, 1), (d, "base", 0, 2), (d, "freeze", 1, 2)]
    n = len(keys)
    k = pd.DataFrame(keys, columns=KEY)
    hist = k.assign(
        loss=np.linspace(2.0, 1.0, n),
        accuracy=np.linspace(0.1, 0.6, n),
        val_loss=np.linspace(2.5, 1.5, n),
        val_accuracy=[0.011, 0.012, 0.013, 0.20, 0.25, 0.27],
    )
    emis = k.assign(
        start="2023-01-11 14:40:31",
        duration=[40.0, 10.0, 8.0, 30.0, 12.0, 9.0],
        emissions=[0.0004] * n,
        cpu_energy=[0.0005] * n,
        gpu_energy=[0.0014] * n,
        ram_energy=[0.0001] * n,
        energy_consumed=[0.002] * n,
    )
    alld = k.copy()
    alld["dataset"] = alld["dataset"].replace({"visual_domain_decathlon/aircraft": "aircraft"})
    alld["energy_nvidia"] = [0.001, 0.0002, 0.0001, 0.003, 0.0004, 0.00025]
    info = pd.DataFrame(
        {
            "dataset": ["visual_domain_decathlon/aircraft", "voc"],
            "num_classes": [100, 20],
            "train_size": [3334, 2501],
            "test_size": [3333, 4952],
            "from_tensorflow": [1, 1],
        }
    )
    hist.to_csv(tmp_path / "history.csv")  # with the unnamed index column, as published
    emis.to_csv(tmp_path / "emissions.csv")
    alld.to_csv(tmp_path / "all_data.csv")
    info.to_csv(tmp_path / "datasets.csv", index=False)
    return tmp_path


def test_hand_checked_row_nvidia(tmp_path):
    rows = import_eatit(_write_fixture(tmp_path), energy="nvidia")
    assert len(rows) == 6
    r = rows[(rows.dataset == "voc") & (rows.method == "freeze")].iloc[0]
    # voc freeze@1 epoch 2: energy_nvidia 0.00025 kWh = 900 J; duration 9 s
    assert r["intervention_epoch"] == 1 and r["epoch"] == 2
    assert r["energy_gpu_j"] == pytest.approx(900.0)
    assert r["energy_total_j"] == pytest.approx(900.0)
    assert r["energy_gpu_source"] == "imported"
    assert r["duration_s"] == 9.0
    assert r["val_accuracy"] == 0.27
    assert r["co2eq_g"] == pytest.approx(0.4)
    assert (r["num_classes"], r["train_size"], r["val_size"], r["image_size"]) == (
        20,
        2501,
        4952,
        32,
    )
    assert (r["study"], r["model"], r["seed"]) == ("eatit", "vgg16_head", 0)
    assert set(rows.dataset) == {"aircraft", "voc"}
    assert (rows.loc[rows.method == "base", "intervention_epoch"] == 0).all()
    # the rows pass the record schema
    write_records(rows, tmp_path / "r.parquet")
    assert len(read_records(tmp_path / "r.parquet")) == 6


def test_codecarbon_parts(tmp_path):
    rows = import_eatit(_write_fixture(tmp_path), energy="codecarbon")
    r = rows.iloc[0]
    assert r["energy_total_j"] == pytest.approx(0.002 * 3.6e6)  # 7200 J
    assert r["energy_cpu_j"] == pytest.approx(1800.0)
    assert r["energy_gpu_j"] == pytest.approx(5040.0)
    assert r["energy_dram_j"] == pytest.approx(360.0)


def test_bad_energy_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="nvidia"):
        import_eatit(tmp_path, energy="rapl")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="history.csv"):
        import_eatit(tmp_path)


def test_flag_chance_level(tmp_path):
    rows = import_eatit(_write_fixture(tmp_path))
    # aircraft: max 0.013 < min(5/100, 0.01 + 0.05) -> flagged; voc: 0.27 >= min(0.25, 0.10)
    assert flag_chance_level(rows) == {"aircraft"}
    # voc with factor 6 and margin 0.25: 0.27 < min(6/20, 0.05 + 0.25) = 0.30 -> flagged
    assert flag_chance_level(rows, factor=6.0, margin=0.25) == {"aircraft", "voc"}


def test_shared_eatit(eatit_dir, tmp_path):
    rows = import_eatit(eatit_dir)
    assert len(rows) == 3150 and rows["dataset"].nunique() == 9
    assert flag_chance_level(rows) == {"aircraft"}
    traj = build_trajectories(read_records(write_records(rows, tmp_path / "e.parquet")))
    alld = pd.read_csv(eatit_dir / "all_data.csv")
    one = alld[
        (alld.dataset == "caltech101") & (alld["mode"] == "freeze") & (alld.intervention == 30)
    ]
    one = one[one.epoch == 50].iloc[0]
    t = traj[
        (traj.dataset == "caltech101") & (traj.method == "freeze") & (traj.intervention_epoch == 30)
    ]
    t = t[t.epoch == 50].iloc[0]
    # path cumulative energy = the authors' energy_nvidia_cumulative
    assert t["energy_cum_j"] == pytest.approx(one["energy_nvidia_cumulative"] * 3.6e6, rel=1e-12)


def test_chance_flag_keeps_binary_and_few_class_datasets():
    """A binary dataset at 0.94 is not chance level although 5/K > 1; 0.53 is (chance + 3 points)."""
    import pandas as pd

    from greenpath.modeling.eatit import flag_chance_level

    rows = pd.DataFrame(
        {
            "dataset": ["faces", "faces", "coin", "many", "ten"],
            "num_classes": [2, 2, 2, 100, 10],
            "val_accuracy": [0.60, 0.94, 0.53, 0.026, 0.16],
        }
    )
    # many: 0.026 < min(5/100, 0.01 + 0.05) = 0.05; ten: 0.16 >= min(0.5, 0.15)
    assert flag_chance_level(rows) == {"coin", "many"}
