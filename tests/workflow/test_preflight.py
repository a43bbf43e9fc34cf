"""Pre-flight: every problem of config/paper.yaml on a machine without its data, weights
or GPU, in one message with its fix; a dry run lists them and still plans the jobs."""

from __future__ import annotations

import pytest
from conftest import REPO

from greenpath.config import load_config
from greenpath.preflight import VGG16_WEIGHTS_FILE, format_problems, preflight_problems


@pytest.fixture
def paper(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cfg = load_config(REPO / "config" / "paper.yaml", check_datasets=False)
    cfg["data"]["root"] = str(tmp_path / "data")
    return cfg


def test_paper_config_lists_every_missing_item(paper, tmp_path, monkeypatch):
    monkeypatch.setattr("greenpath.preflight.cuda_device_count", lambda: 0)
    problems = preflight_problems(paper)
    heads = [p.split(":")[0] for p in problems]
    assert heads == [
        "dataset stanford_cars",
        "dataset sun397",
        "dataset birdsnap",
        "model.pretrained",
        "training.device = 'cuda' but this machine has 0 CUDA device(s). Fix",
    ]
    msg = format_problems(problems)
    assert msg.startswith("greenpath pre-flight: 5 problem(s)")
    assert str(tmp_path / "data" / "birdsnap" / "train") in msg
    assert "<root>/birdsnap/{train,test}/<class name>/*.jpg" in msg  # where to place it
    assert "SUN397.tar.gz" in msg and "stanford_cars" in msg
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / VGG16_WEIGHTS_FILE) in msg


def test_device_is_left_to_the_compute_side_and_present_items_pass(paper, tmp_path):
    for d in ("stanford_cars/devkit/cars_meta.mat", "SUN397/ClassName.txt", "birdsnap/train",
              "birdsnap/test", "stanford_cars/devkit/cars_train_annos.mat",
              "stanford_cars/cars_test_annos_withlabels.mat", "stanford_cars/cars_train",
              "stanford_cars/cars_test"):  # fmt: skip
        (tmp_path / "data" / d).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / d).touch()
    weights = tmp_path / "torch" / "hub" / "checkpoints" / VGG16_WEIGHTS_FILE
    weights.parent.mkdir(parents=True)
    weights.touch()
    assert preflight_problems(paper, check_device=False) == []


def test_weights_file_name_matches_the_model_builder():
    from greenpath.models.build import VGG16_WEIGHTS_FILE as BUILD_NAME

    assert VGG16_WEIGHTS_FILE == BUILD_NAME
