"""scripts/prepare_dataset.py and the config -> arguments mapping."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from greenpath.data import DataError, dataset_arguments, load_prepared

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "prepare_dataset.py"


def _config(root: Path) -> dict:
    return {
        "data": {
            "root": str(root),
            "download": False,
            "channels": 3,
            "image_size": 16,
            "val_fraction": 0.2,
        },
        "datasets": {
            "digits": {},
            "lfw_faces": {"image_size": 12, "channels": 1, "val_fraction": 0.25},
            "fashion_mnist": {"subset": {"train": 2000, "val": 500}},
            "font_digits": {"per_class": 150},
        },
    }


def test_dataset_arguments_defaults_and_overrides(tmp_path) -> None:
    cfg = _config(tmp_path)
    args = dataset_arguments("lfw_faces", cfg)
    assert (args["image_size"], args["channels"], args["val_fraction"]) == (12, 1, 0.25)
    assert args["data_root"] == tmp_path and args["download"] is False and args["seed"] == 0
    assert dataset_arguments("fashion_mnist", cfg)["subset"] == {"train": 2000, "val": 500}
    assert dataset_arguments("font_digits", cfg)["options"] == {"per_class": 150}
    assert dataset_arguments("digits", cfg)["image_size"] == 16
    cfg["datasets"]["digits"] = {"per_class": 3}
    with pytest.raises(DataError, match=r"datasets.digits: unknown key\(s\) \['per_class'\]"):
        dataset_arguments("digits", cfg)
    with pytest.raises(DataError, match="not listed under `datasets:`"):
        dataset_arguments("cifar10", cfg)


def test_standalone_script(tmp_path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(_config(tmp_path / "data")))
    out = tmp_path / "results" / "data" / "lfw_faces.npz"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--dataset", "lfw_faces", "--config", str(cfg), "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    ds = load_prepared(out)
    assert ds.x_train.shape == (150, 12, 12, 1) and ds.val_size == 50
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "--dataset", "cifar10", "--config", str(cfg), "--out", str(tmp_path / "c.npz")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "not listed under `datasets:`" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "c.npz").exists()


def test_snakemake_script_directive(tmp_path) -> None:
    out = tmp_path / "font_digits.npz"
    log = tmp_path / "logs" / "prepare_font_digits.log"
    cfg = _config(tmp_path / "data")
    cfg["datasets"]["font_digits"] = {"per_class": 4}
    fake = SimpleNamespace(
        wildcards=SimpleNamespace(dataset="font_digits"),
        params=SimpleNamespace(settings=cfg),
        output=[str(out)],
        log=[str(log)],
    )
    with pytest.raises(SystemExit) as code:
        runpy.run_path(str(SCRIPT), init_globals={"snakemake": fake}, run_name="__snakemake__")
    assert code.value.code == 0
    ds = load_prepared(out)
    assert ds.synthetic and ds.train_size == 32 and ds.image_size == 16
    # 40 images, val round(40 * 0.2) = 8: quotas 0.8 per class, ties to lower classes
    assert np.bincount(ds.y_val, minlength=10).tolist() == [1] * 8 + [0, 0]
    assert "prepared font_digits" in log.read_text()
