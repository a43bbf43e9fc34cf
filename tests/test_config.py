"""Config validation: every bad config stops with a message naming key, value and fix (issue 7)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from greenpath.config import ConfigError, check_config, config_hash, load_config

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def _set(cfg, dotted, value):
    keys = dotted.split(".")
    node = cfg
    for k in keys[:-1]:
        node = node[k]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return cfg


_DELETE = object()

# (dotted key, bad value, text the message must contain)
BAD = [
    ("datasets.imagenet_typo", {}, "unknown dataset(s) ['imagenet_typo']"),
    ("interventions.methods", ["freeze", "prune"], "'prune' is not allowed; choose one of"),
    ("model.name", "resnet50", "model.name = 'resnet50' is not allowed"),
    ("interventions.epochs", [0, 3, 10], "[10] outside [0, training.epochs)"),
    ("interventions.epochs", [0, 3, 12], "[12] outside"),
    ("interventions.epochs", [5, 3], "must be ascending, e.g. [3, 5]"),
    ("interventions.epochs", [-1, 3], "interventions.epochs.0 = -1 violates minimum 0"),
    ("interventions.epochs", [3, 3], "duplicate entries"),
    ("interventions.epochs", [], "needs at least 1 item"),
    ("training.epochs", 0, "training.epochs = 0 violates minimum 1"),
    ("training.batch_size", -8, "training.batch_size = -8 violates minimum 1"),
    ("training.lr", 0, "training.lr = 0 violates exclusiveMinimum 0"),
    ("data.image_size", 0, "data.image_size = 0 violates minimum 4"),
    ("datasets.fashion_mnist.subset.train", 0, "subset.train = 0 violates minimum 1"),
    ("seeds", [0, 1.5], "seeds.1 = 1.5 has the wrong type; expected integer"),
    ("seeds", ["one"], "seeds.0 = 'one' has the wrong type"),
    ("seeds", 3, "seeds = 3 has the wrong type; expected array"),
    ("data.root", _DELETE, "'root' is a required property"),
    ("data.root", "", "data.root = ''"),
    ("training.epochs", "10", "training.epochs = '10' has the wrong type; expected integer"),
    ("training.epoch", 10, "unknown key(s) ['epoch'] under training"),
    ("trainig", {"epochs": 3}, "unknown key(s) ['trainig'] under (top level)"),
    ("training.device", "gpu", "training.device = 'gpu' must match"),
    ("training.optimizer", "adagrad", "'adagrad' is not allowed"),
    (
        "methods.quant.dtype",
        "int8",
        "'int8' is not allowed; choose one of ['auto', 'fp16', 'bf16']",
    ),
    ("methods.freeze.trainable", "everything", "'everything' is not allowed"),
    ("data.channels", 2, "data.channels = 2 is not allowed"),
    ("study", "my study; rm -rf /", "study = 'my study; rm -rf /' must match"),
    ("datasets", {}, "datasets needs at least 1 entry"),
    ("datasets.bad name", {}, "datasets = 'bad name' must match"),
]


@pytest.mark.parametrize(("key", "value", "expected"), BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_bad_config_is_refused_with_a_message(key, value, expected):
    cfg = _set(copy.deepcopy(DEFAULT), key, value)
    with pytest.raises(ConfigError) as info:
        check_config(cfg)
    assert expected in str(info.value)


def test_missing_data_root_for_on_disk_datasets(tmp_path):
    cfg = copy.deepcopy(DEFAULT)
    cfg["datasets"] = {"cifar10": {}}
    cfg["data"]["root"] = str(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=r"data.root = '.*nowhere' does not exist.*\['cifar10'\]"):
        check_config(cfg)
    cfg["data"]["download"] = True
    check_config(cfg)  # torchvision may download it into a new root
    cfg["data"]["download"] = False
    (tmp_path / "nowhere").mkdir()
    check_config(cfg)  # the prepare step names any missing file


def test_at_least_20_bad_configs():
    assert len(BAD) >= 20


def test_default_and_paper_configs_are_valid():
    cfg = load_config(ROOT / "config" / "config.yaml")
    assert cfg["methods"]["quant"]["dtype"] == "auto"
    assert cfg["training"]["num_threads"] == 1
    paper = load_config(ROOT / "config" / "paper.yaml")
    assert paper["training"]["epochs"] == 50
    assert paper["interventions"]["epochs"] == [0, 10, 20, 30, 40]
    assert len(paper["datasets"]) == 12


def test_missing_file_names_it(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_config_hash_ignores_seeds_but_not_lr():
    a = copy.deepcopy(DEFAULT)
    b = copy.deepcopy(DEFAULT)
    b["seeds"] = [7]
    assert config_hash(a) == config_hash(b)
    b["training"]["lr"] = 0.01
    assert config_hash(a) != config_hash(b)


def test_energy_section_of_the_schema_matches_the_meter():
    from greenpath.config import load_schema
    from greenpath.energy import ENERGY_CONFIG_SCHEMA

    energy = load_schema()["properties"]["energy"]
    assert energy["properties"] == ENERGY_CONFIG_SCHEMA["properties"]
    assert energy["additionalProperties"] is False


def test_energy_typo_is_refused():
    cfg = copy.deepcopy(DEFAULT)
    cfg["energy"] = {"cpu_tdp": 65}
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['cpu_tdp'\] under energy"):
        check_config(cfg)
