"""Every torchvision-backed registry entry loads a tiny native-format fixture (download=False).

Where torchvision verifies a real MD5 that a fixture cannot match (CIFAR-10/100 batches,
MNIST .gz, SVHN .mat, STL-10 binaries, Flowers102 .mat), the class attribute holding the
MD5 is patched to the fixture's own MD5 (see ``datafixtures.py``); greenpath's integrity
check reads the same attributes, so both checks still run against real digests.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datafixtures import BUILDERS, COLORS, GREYS

from greenpath.data import DataError, load_prepared, prepare_dataset
from greenpath.data.registry import PAPER_DATASETS

torch.set_num_threads(1)


def _apply(monkeypatch: pytest.MonkeyPatch, info: dict) -> None:
    for obj, attr, value in info.get("md5", []):
        monkeypatch.setattr(obj, attr, value)


def _expected_colour(label: int, grey: bool) -> np.ndarray:
    return np.array([GREYS[label]] * 3 if grey else COLORS[label], dtype=float)


def test_every_paper_dataset_and_extra_has_a_fixture() -> None:
    extra = {"mnist", "svhn", "gtsrb", "eurosat", "stl10"}
    assert set(PAPER_DATASETS) | extra == set(BUILDERS)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_fixture_loads(name: str, tmp_path, monkeypatch) -> None:
    root = tmp_path / "data"
    info = BUILDERS[name](root)
    _apply(monkeypatch, info)
    out = tmp_path / "out" / f"{name}.npz"
    ds = prepare_dataset(name, data_root=root, out_path=out, image_size=8, channels=3, seed=3)
    assert ds.class_names == info["classes"]
    assert ds.x_train.dtype == np.uint8 and ds.x_val.dtype == np.uint8
    assert ds.x_train.shape[1:] == (8, 8, 3) and ds.image_size == 8
    multilabel = info.get("multilabel", False)
    assert ds.multilabel is multilabel
    if multilabel:
        assert ds.y_train.dtype == np.float32
        np.testing.assert_array_equal(ds.y_train, info["train"])
        np.testing.assert_array_equal(ds.y_val, info["val"])
    else:
        assert ds.y_train.dtype == np.int64
        if info["val"] is None:  # seeded split of all images: round(total * 0.2) in val
            n_val = round(info["total"] * 0.2)
            assert (ds.train_size, ds.val_size) == (info["total"] - n_val, n_val)
            combined = np.sort(np.concatenate([ds.y_train, ds.y_val]))
            np.testing.assert_array_equal(combined, np.sort(info["train"]))
        else:
            np.testing.assert_array_equal(ds.y_train, info["train"])
            np.testing.assert_array_equal(ds.y_val, info["val"])
        grey = info.get("grey", False)
        for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val)):
            means = x.reshape(len(x), -1, 3).astype(float).mean(axis=1)
            want = np.stack([_expected_colour(int(k), grey) for k in y])
            np.testing.assert_allclose(means, want, atol=3.0)
    assert ds.source.startswith("torchvision.datasets.")
    again = load_prepared(out)
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    assert again.class_names == ds.class_names and again.source == ds.source


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_missing_dataset_names_root_files_and_fix(name: str, tmp_path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(DataError) as err:
        prepare_dataset(name, data_root=root, out_path=tmp_path / "o.npz", image_size=8, channels=3)
    msg = str(err.value)
    assert repr(name) in msg and str(root.resolve()) in msg
    assert "Expected:" in msg
    if name in ("stanford_cars", "birdsnap"):
        assert "download: true` " in msg or "cannot" in msg
    else:
        assert "download: true" in msg
    assert not (tmp_path / "o.npz").exists()


def test_known_broken_downloads_say_so(tmp_path) -> None:
    for name, issue in (
        ("stanford_cars", "pytorch/vision#7545"),
        ("sun397", "pytorch/vision#9348"),
    ):
        with pytest.raises(DataError, match=issue):
            prepare_dataset(
                name, data_root=tmp_path, out_path=tmp_path / "o.npz", image_size=8, channels=3
            )


def test_cifar10_pixels_exact_at_native_size(tmp_path, monkeypatch) -> None:
    """At 32x32 nothing is resized: pixel (h, w, c) equals data[c*1024 + h*32 + w]."""
    info = BUILDERS["cifar10"](tmp_path)
    _apply(monkeypatch, info)
    ds = prepare_dataset(
        "cifar10", data_root=tmp_path, out_path=tmp_path / "c.npz", image_size=32, channels=3
    )
    first = ds.x_train[0]
    assert first[0, 5, 0] == 77  # the marked byte 5 of batch 1, image 0 (channel 0)
    assert tuple(first[0, 6]) == COLORS[info["train"][0]]
    gray = prepare_dataset(
        "cifar10", data_root=tmp_path, out_path=tmp_path / "g.npz", image_size=32, channels=1
    )
    r, g, b = COLORS[info["train"][1]]
    # ITU-R 601-2 luma, as Pillow's convert("L"): (R*299 + G*587 + B*114) / 1000
    assert gray.x_train[1, 10, 10, 0] == round((r * 299 + g * 587 + b * 114) / 1000)


def test_voc_difficult_objects_are_ignored(tmp_path) -> None:
    from greenpath.data.torchvision_sets import VOC_CLASSES

    BUILDERS["voc"](tmp_path)
    ds = prepare_dataset(
        "voc", data_root=tmp_path, out_path=tmp_path / "v.npz", image_size=8, channels=3
    )
    row0 = {VOC_CLASSES[i] for i in np.flatnonzero(ds.y_train[0])}
    row2 = {VOC_CLASSES[i] for i in np.flatnonzero(ds.y_train[2])}
    assert row0 == {"chair", "dog"}  # one chair difficult, one not: chair stays
    assert row2 == {"horse"}  # the only person is difficult
    assert ds.y_val[1].sum() == 0  # every object difficult: all-zero row
